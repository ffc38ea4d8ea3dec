-- Conditional and conversion functions: searched and simple CASE (with and without ELSE), CAST
-- between INT, BIGINT, DOUBLE, STRING and DECIMAL, COALESCE and IF over NULLs.
CREATE TABLE flights (
  `year` INT, `month` INT, `day` INT,
  dep_time INT, sched_dep_time INT, dep_delay INT,
  arr_time INT, sched_arr_time INT, arr_delay INT,
  carrier STRING, flight INT, tailnum STRING, origin STRING, dest STRING,
  air_time INT, distance INT, `hour` INT, `minute` INT,
  time_hour STRING, sched_dep_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' DAY
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE `result` (
  carrier STRING,
  flight INT,
  sched_dep_ts BIGINT,
  delay_class STRING,
  origin_name STRING,
  delay_or_zero INT,
  delay_text STRING,
  hours DOUBLE,
  distance_dec DECIMAL(10, 2),
  cancelled STRING,
  air_time_big BIGINT,
  parsed INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT
  carrier,
  flight,
  sched_dep_ts,
  CASE
    WHEN dep_delay IS NULL THEN 'cancelled'
    WHEN dep_delay <= 0 THEN 'on time'
    WHEN dep_delay < 60 THEN 'late'
    ELSE 'very late'
  END AS delay_class,
  CASE origin WHEN 'EWR' THEN 'Newark' WHEN 'JFK' THEN 'Kennedy' END AS origin_name,
  COALESCE(dep_delay, arr_delay, 0) AS delay_or_zero,
  CAST(dep_delay AS STRING) AS delay_text,
  CAST(air_time AS DOUBLE) / 60 AS hours,
  CAST(distance AS DECIMAL(10, 2)) / 3 AS distance_dec,
  IF(dep_time IS NULL, 'yes', 'no') AS cancelled,
  CAST(air_time AS BIGINT) * 1000000 AS air_time_big,
  CAST(CAST(flight AS STRING) AS INT) + 1 AS parsed
FROM flights
WHERE `month` = 1 AND `day` = 3;
