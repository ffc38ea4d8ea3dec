-- window_time and cascading windows: hourly counts per origin in a view that keeps window_time (a
-- TIMESTAMP_LTZ(3) rowtime), then a second TUMBLE (1 day) over the view on it: the busiest hour
-- and the day's total, with the daily window_time written (TIMESTAMP_LTZ(3), with its zone).
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

CREATE TEMPORARY VIEW hourly AS
SELECT origin, window_time AS hour_time, COUNT(*) AS flights
FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY origin, window_start, window_end, window_time;

CREATE TABLE `result` (
  origin STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP_LTZ(3),
  hours BIGINT,
  busiest_hour BIGINT,
  flights BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, window_start, window_end, window_time,
  COUNT(*) AS hours, MAX(flights) AS busiest_hour, SUM(flights) AS flights
FROM TABLE(TUMBLE(TABLE hourly, DESCRIPTOR(hour_time), INTERVAL '1' DAY))
GROUP BY origin, window_start, window_end, window_time;
