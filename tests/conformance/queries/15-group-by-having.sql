-- Non-windowed GROUP BY on an expression with HAVING into upsert-kafka: routes (origin-dest) with
-- more than 3000 flights and the share of them cancelled.
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
  route STRING,
  flights BIGINT,
  cancelled BIGINT,
  cancelled_pct DOUBLE,
  PRIMARY KEY (route) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO `result`
SELECT CONCAT(origin, '-', dest) AS route, COUNT(*) AS flights,
  SUM(CASE WHEN dep_time IS NULL THEN 1 ELSE 0 END) AS cancelled,
  100.0 * SUM(CASE WHEN dep_time IS NULL THEN 1 ELSE 0 END) / COUNT(*) AS cancelled_pct
FROM flights
GROUP BY CONCAT(origin, '-', dest)
HAVING COUNT(*) > 3000;
