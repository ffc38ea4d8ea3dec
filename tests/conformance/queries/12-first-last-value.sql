-- FIRST_VALUE / LAST_VALUE in a TUMBLE window (6 hours) per origin. The flights topic is keyed by
-- origin, so one origin's records come from one partition in offset order and the first/last
-- value in arrival order is the same in every engine (FIRST_VALUE and LAST_VALUE skip NULLs).
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
  first_dest STRING,
  last_dest STRING,
  first_tail STRING,
  last_delay INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, window_start, window_end,
  FIRST_VALUE(dest) AS first_dest,
  LAST_VALUE(dest) AS last_dest,
  FIRST_VALUE(tailnum) AS first_tail,
  LAST_VALUE(dep_delay) AS last_delay
FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '6' HOUR))
GROUP BY origin, window_start, window_end;
