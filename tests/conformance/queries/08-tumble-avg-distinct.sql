-- TUMBLE window (1 day) per carrier: AVG of an INT column (Flink keeps the INT type: integer
-- division), AVG of a DOUBLE, COUNT(DISTINCT), MIN/MAX of strings.
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
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  avg_delay_int INT,
  avg_delay DOUBLE,
  dests BIGINT,
  tails BIGINT,
  first_dest STRING,
  last_dest STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT
  carrier,
  window_start,
  window_end,
  AVG(arr_delay) AS avg_delay_int,
  AVG(CAST(arr_delay AS DOUBLE)) AS avg_delay,
  COUNT(DISTINCT dest) AS dests,
  COUNT(DISTINCT tailnum) AS tails,
  MIN(dest) AS first_dest,
  MAX(dest) AS last_dest
FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' DAY))
GROUP BY carrier, window_start, window_end;
