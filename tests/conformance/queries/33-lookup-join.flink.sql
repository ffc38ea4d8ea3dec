-- The reference of 33-lookup-join.sql for Flink, which looks up only in external systems
-- (JDBC, HBase, ...), not in a Kafka table: over a table that does not change during the run,
-- an inner lookup join gives exactly the rows of the regular inner join (append-only).
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

CREATE TABLE planes (
  tailnum STRING, `year` INT, type STRING, manufacturer STRING, model STRING,
  engines INT, seats INT, speed INT, engine STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'planes',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE `result` (
  carrier STRING,
  flight INT,
  tailnum STRING,
  sched_dep_ts BIGINT,
  manufacturer STRING,
  model STRING,
  seats INT,
  plane_year INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT f.carrier, f.flight, f.tailnum, f.sched_dep_ts, p.manufacturer, p.model, p.seats,
  p.`year` AS plane_year
FROM flights AS f
JOIN planes AS p ON f.tailnum = p.tailnum
WHERE f.`month` = 1 AND f.`day` = 4;
