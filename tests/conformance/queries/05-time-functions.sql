-- Time functions in the session time zone UTC: TO_TIMESTAMP_LTZ (a computed departure time),
-- DATE_FORMAT, FLOOR(... TO HOUR) and FLOOR(... TO DAY), TIMESTAMPADD, TIMESTAMPDIFF, CAST of a
-- TIMESTAMP_LTZ to TIMESTAMP(3); TIMESTAMP(3) columns are written as '2013-01-01 05:00:00'.
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
  sched STRING,
  sched_hour TIMESTAMP(3),
  sched_day TIMESTAMP(3),
  dep TIMESTAMP(3),
  dep_minus_sched_min INT,
  arrives_by TIMESTAMP(3),
  day_of_year STRING,
  floor_ltz TIMESTAMP_LTZ(3)
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
  DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm') AS sched,
  CAST(FLOOR(ts TO HOUR) AS TIMESTAMP(3)) AS sched_hour,
  CAST(FLOOR(ts TO DAY) AS TIMESTAMP(3)) AS sched_day,
  CAST(TO_TIMESTAMP_LTZ(sched_dep_ts + dep_delay * 60000, 3) AS TIMESTAMP(3)) AS dep,
  TIMESTAMPDIFF(MINUTE, ts, TO_TIMESTAMP_LTZ(sched_dep_ts + dep_delay * 60000, 3))
    AS dep_minus_sched_min,
  CAST(TIMESTAMPADD(MINUTE, air_time, ts) AS TIMESTAMP(3)) AS arrives_by,
  DATE_FORMAT(ts, 'D') AS day_of_year,
  FLOOR(ts TO HOUR) AS floor_ltz
FROM flights
WHERE `month` = 1 AND `day` = 5 AND origin = 'JFK';
