-- METADATA columns of the Kafka connector: each weather record's partition, offset, topic and
-- Kafka timestamp, its type and the leader epoch (VIRTUAL: read only), beside its fields, for
-- the first two days of January.
CREATE TABLE weather (
  origin STRING, `year` INT, `month` INT, `day` INT, `hour` INT,
  temp DOUBLE, time_hour STRING, time_ts BIGINT,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  ts_type STRING METADATA FROM 'timestamp-type' VIRTUAL,
  epoch INT METADATA FROM 'leader-epoch' VIRTUAL,
  ts AS TO_TIMESTAMP_LTZ(time_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' HOUR
) WITH (
  'connector' = 'kafka',
  'topic' = 'weather',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE `result` (
  origin STRING,
  time_hour STRING,
  temp DOUBLE,
  kafka_partition INT,
  kafka_offset BIGINT,
  kafka_topic STRING,
  kafka_ts TIMESTAMP_LTZ(3),
  ts_type STRING,
  epoch INT,
  offset_parity BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, time_hour, temp, kafka_partition, kafka_offset, kafka_topic, kafka_ts, ts_type, epoch,
  MOD(kafka_offset, 2) AS offset_parity
FROM weather
WHERE `month` = 1 AND `day` <= 2;
