-- A STATEMENT SET with two INSERTs from one source in one job: a filtered projection into result
-- (append) and a per-origin non-windowed aggregate into result2 (upsert-kafka).
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
  origin STRING,
  sched_dep_ts BIGINT,
  dep_delay INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

CREATE TABLE `result2` (
  origin STRING,
  flights BIGINT,
  max_delay INT,
  PRIMARY KEY (origin) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result2_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

EXECUTE STATEMENT SET
BEGIN
INSERT INTO `result`
SELECT carrier, flight, origin, sched_dep_ts, dep_delay
FROM flights
WHERE dep_delay > 600;
INSERT INTO `result2`
SELECT origin, COUNT(*) AS flights, MAX(dep_delay) AS max_delay
FROM flights
GROUP BY origin;
END;
