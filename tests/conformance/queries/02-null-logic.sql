-- Three-valued logic: AND/OR/NOT and comparisons whose operands are NULL, projected as BOOLEAN
-- columns (NULL results written as null), and a WHERE clause that keeps only rows where the
-- predicate is TRUE (not NULL).
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
  dep_delay INT,
  arr_delay INT,
  both_late BOOLEAN,
  either_late BOOLEAN,
  not_late BOOLEAN,
  eq_delay BOOLEAN,
  is_cancelled BOOLEAN
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
  dep_delay,
  arr_delay,
  dep_delay > 0 AND arr_delay > 0 AS both_late,
  dep_delay > 0 OR arr_delay > 0 AS either_late,
  NOT (arr_delay > 0) AS not_late,
  dep_delay = arr_delay AS eq_delay,
  dep_time IS NULL AS is_cancelled
FROM flights
WHERE `month` = 1 AND `day` = 2 AND origin = 'LGA'
  AND NOT (dep_delay <= 0 AND arr_delay <= 0);
