-- Kafka keys as Flink writes and reads them: the source reads `origin` from the record key (the
-- flights topic is keyed by origin: 'key.format' = 'raw', 'value.fields-include' = 'EXCEPT_KEY',
-- so the value's own origin is not read); the sink writes its key as a JSON object of its
-- 'key.fields' in their order, named without the 'key.fields-prefix' ({"carrier":...,"dest":...}),
-- and its value without the key columns. The keys are compared too (compare.py, "keyed").
CREATE TABLE flights (
  origin STRING,
  carrier STRING, flight INT, tailnum STRING, dest STRING, distance INT,
  `month` INT, `day` INT, sched_dep_ts BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'key.format' = 'raw',
  'key.fields' = 'origin',
  'value.format' = 'json',
  'value.fields-include' = 'EXCEPT_KEY'
);

CREATE TABLE `result` (
  k_carrier STRING,
  k_dest STRING,
  origin STRING,
  flight INT,
  tailnum STRING,
  distance INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'key.fields' = 'k_carrier;k_dest',
  'key.fields-prefix' = 'k_',
  'value.format' = 'json',
  'value.fields-include' = 'EXCEPT_KEY'
);

INSERT INTO `result`
SELECT carrier, dest, origin, flight, tailnum, distance
FROM flights
WHERE `month` = 1 AND `day` = 1;
