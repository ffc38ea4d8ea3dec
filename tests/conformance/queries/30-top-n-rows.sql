-- Top-N over a table's rows (append-only input, Flink's AppendOnlyTopNFunction): the 3 longest
-- departure delays per origin in the first week of January, ties broken by carrier, flight and
-- scheduled time; an updating result into upsert-kafka keyed by (origin, rn).
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
  carrier STRING,
  flight INT,
  dep_delay INT,
  sched_dep_ts BIGINT,
  PRIMARY KEY (origin, rn) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO `result`
SELECT origin, rn, carrier, flight, dep_delay, sched_dep_ts
FROM (
  SELECT *, ROW_NUMBER() OVER (
      PARTITION BY origin ORDER BY dep_delay DESC, carrier, flight, sched_dep_ts) AS rn
  FROM flights
  WHERE `month` = 1 AND `day` <= 7 AND dep_delay IS NOT NULL
)
WHERE rn <= 3;
