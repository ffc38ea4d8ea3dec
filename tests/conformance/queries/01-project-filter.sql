-- Projection and filter: arithmetic (+, -, *, /, %), comparisons, AND/OR/NOT over nullable
-- columns (cancelled flights have NULL dep_delay, arr_delay and air_time), IS NULL / IS NOT NULL.
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
  origin STRING,
  dest STRING,
  sched_dep_ts BIGINT,
  gain INT,
  speed_mph DOUBLE,
  dist_mod INT,
  late_or_far BOOLEAN
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
  origin,
  dest,
  sched_dep_ts,
  dep_delay - arr_delay AS gain,
  distance / (air_time / 60.0) AS speed_mph,
  distance % 100 AS dist_mod,
  arr_delay > 60 OR distance > 2000 AS late_or_far
FROM flights
WHERE `month` = 1 AND `day` <= 7
  AND origin = 'EWR'
  AND NOT (dest = 'ORD' OR dest = 'ATL')
  AND (dep_delay > 30 OR arr_delay IS NULL)
  AND (air_time IS NULL OR air_time * 2 >= 100);
