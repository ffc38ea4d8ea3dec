-- HOP window TVF (size 3 hours, slide 1 hour; each flight in 3 windows) per origin: COUNT(*) and
-- SUM of distance, with a filter before the window.
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
  distance INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, window_start, window_end, COUNT(*) AS flights, SUM(distance) AS distance
FROM TABLE(HOP(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' HOUR, INTERVAL '3' HOUR))
WHERE `month` <= 3
GROUP BY origin, window_start, window_end;
