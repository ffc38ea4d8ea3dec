-- Non-windowed Top-N: the 3 destinations with the most flights per origin (ROW_NUMBER over an
-- aggregate, ties broken by dest), an updating result into upsert-kafka keyed by (origin, rn).
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
  rn BIGINT,
  dest STRING,
  flights BIGINT,
  PRIMARY KEY (origin, rn) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO `result`
SELECT origin, rn, dest, flights
FROM (
  SELECT origin, dest, flights,
    ROW_NUMBER() OVER (PARTITION BY origin ORDER BY flights DESC, dest ASC) AS rn
  FROM (
    SELECT origin, dest, COUNT(*) AS flights
    FROM flights
    GROUP BY origin, dest
  )
)
WHERE rn <= 3;
