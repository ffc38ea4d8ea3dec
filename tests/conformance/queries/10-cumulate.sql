-- CUMULATE window TVF (step 6 hours, max size 1 day) per origin: the running COUNT(*),
-- MAX(arr_delay) and SUM(air_time) of each day at 06, 12, 18 and 24 h.
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
  origin STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  flights BIGINT,
  max_arr_delay INT,
  air_time INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, window_start, window_end, COUNT(*) AS flights,
  MAX(arr_delay) AS max_arr_delay, SUM(air_time) AS air_time
FROM TABLE(CUMULATE(TABLE flights, DESCRIPTOR(ts), INTERVAL '6' HOUR, INTERVAL '1' DAY))
GROUP BY origin, window_start, window_end;
