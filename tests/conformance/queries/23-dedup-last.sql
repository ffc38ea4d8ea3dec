-- ROW_NUMBER deduplication keeping the last row per key in event-time order (ORDER BY ts DESC,
-- rn = 1): the last scheduled departure of each carrier and flight number, into upsert-kafka.
-- Only flights that departed and have a tailnum: a cancelled copy of a flight can share the
-- maximum time across partitions (a tie, the winner then depends on arrival order); without
-- them there is no tie at the maximum.
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
  tailnum STRING,
  origin STRING,
  dest STRING,
  sched_dep_ts BIGINT,
  PRIMARY KEY (carrier, flight) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO `result`
SELECT carrier, flight, tailnum, origin, dest, sched_dep_ts
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY carrier, flight ORDER BY ts DESC) AS rn
  FROM flights
  WHERE tailnum IS NOT NULL AND dep_time IS NOT NULL
)
WHERE rn = 1;
