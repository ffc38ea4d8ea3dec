-- TUMBLE window TVF (1 hour on event time) per origin with GROUP BY window_start, window_end,
-- key: COUNT(*), COUNT(column) (skips NULLs), SUM, MIN, MAX over the whole year.
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
  departed BIGINT,
  total_delay INT,
  min_delay INT,
  max_delay INT,
  total_distance BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT
  origin,
  window_start,
  window_end,
  COUNT(*) AS flights,
  COUNT(dep_delay) AS departed,
  SUM(dep_delay) AS total_delay,
  MIN(dep_delay) AS min_delay,
  MAX(dep_delay) AS max_delay,
  SUM(CAST(distance AS BIGINT)) AS total_distance
FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY origin, window_start, window_end;
