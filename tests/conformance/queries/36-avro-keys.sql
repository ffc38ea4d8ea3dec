-- Avro keys as Flink writes them: an upsert-kafka GROUP BY whose key is its PRIMARY KEY in
-- 'key.format' = 'avro' (a record of the key columns, NOT NULL as primary key columns are), and
-- a kafka table writing its 'key.fields' in 'avro' (nullable columns: ["null", T] unions, named
-- without the 'key.fields-prefix'). The keys are compared byte for byte (compare.py).
CREATE TABLE flights (
  carrier STRING, flight INT, tailnum STRING, origin STRING, dest STRING, distance INT,
  `month` INT, `day` INT, sched_dep_ts BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE `result` (
  carrier STRING,
  origin STRING,
  flights BIGINT,
  total_distance BIGINT,
  PRIMARY KEY (origin, carrier) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'avro',
  'value.format' = 'json'
);

CREATE TABLE result2 (
  k_dest STRING,
  k_flight INT,
  carrier STRING,
  tailnum STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${result2_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'avro',
  'key.fields' = 'k_dest;k_flight',
  'key.fields-prefix' = 'k_',
  'value.format' = 'json',
  'value.fields-include' = 'EXCEPT_KEY'
);

EXECUTE STATEMENT SET
BEGIN
INSERT INTO `result`
SELECT carrier, origin, COUNT(*) AS flights, SUM(CAST(distance AS BIGINT)) AS total_distance
FROM flights
GROUP BY carrier, origin;
INSERT INTO result2
SELECT dest, flight, carrier, tailnum
FROM flights
WHERE `month` = 1 AND `day` = 1;
END;
