-- SESSION window TVF with PARTITION BY (gap 6 hours) per tailnum: the sessions of each aircraft,
-- COUNT(*), MIN/MAX of the scheduled departure, COUNT(DISTINCT origin).
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
  tailnum STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  flights BIGINT,
  first_ts BIGINT,
  last_ts BIGINT,
  origins BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT tailnum, window_start, window_end, COUNT(*) AS flights,
  MIN(sched_dep_ts) AS first_ts, MAX(sched_dep_ts) AS last_ts,
  COUNT(DISTINCT origin) AS origins
FROM TABLE(SESSION(TABLE flights PARTITION BY tailnum, DESCRIPTOR(ts), INTERVAL '6' HOUR))
GROUP BY tailnum, window_start, window_end;
