-- Non-windowed GROUP BY into upsert-kafka (an updating result; the final table is compared): per
-- carrier and origin COUNT(*), COUNT(DISTINCT dest), SUM, MIN, MAX, AVG over the whole year.
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
  origin STRING,
  flights BIGINT,
  dests BIGINT,
  total_distance BIGINT,
  min_delay INT,
  max_delay INT,
  avg_air_time DOUBLE,
  PRIMARY KEY (carrier, origin) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO `result`
SELECT carrier, origin, COUNT(*) AS flights, COUNT(DISTINCT dest) AS dests,
  SUM(CAST(distance AS BIGINT)) AS total_distance,
  MIN(dep_delay) AS min_delay, MAX(dep_delay) AS max_delay,
  AVG(CAST(air_time AS DOUBLE)) AS avg_air_time
FROM flights
GROUP BY carrier, origin;
