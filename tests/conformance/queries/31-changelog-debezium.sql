-- A non-windowed GROUP BY written as a changelog to a plain kafka table with the debezium-json
-- format: every change of the dynamic table as a row with its kind ("c" for +I/+U with "after",
-- "d" for -U with "before"); an update that leaves the aggregates unchanged writes nothing.
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
  carrier STRING,
  worst INT,
  best INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'debezium-json'
);

INSERT INTO `result`
SELECT origin, carrier, MAX(dep_delay) AS worst, MIN(dep_delay) AS best
FROM flights
WHERE `month` = 1 AND `day` <= 2
GROUP BY origin, carrier;
