-- ROW_NUMBER deduplication keeping the first row per key in event-time order (ORDER BY ts ASC, rn
-- = 1): each aircraft's first scheduled flight of the year (no ties at the minimum); an updating
-- result (a later-arriving earlier flight replaces the row) into upsert-kafka.
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
  tailnum STRING,
  carrier STRING,
  flight INT,
  origin STRING,
  dest STRING,
  sched_dep_ts BIGINT,
  PRIMARY KEY (tailnum) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO `result`
SELECT tailnum, carrier, flight, origin, dest, sched_dep_ts
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY tailnum ORDER BY ts ASC) AS rn
  FROM flights
  WHERE tailnum IS NOT NULL
)
WHERE rn = 1;
