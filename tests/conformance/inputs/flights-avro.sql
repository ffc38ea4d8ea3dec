-- The input topic `flights-avro` (query 34 reads it): January's flights written by kstream in
-- Flink's `avro` format, with the same columns and SELECT as query 34's `result` (whose bytes
-- the suite compares with Flink's), so Flink reading this topic reads Avro that kstream wrote.
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

CREATE TABLE flights_avro (
  carrier STRING NOT NULL,
  flight INT NOT NULL,
  tailnum STRING,
  origin STRING,
  dest STRING,
  dep_delay INT,
  arr_delay BIGINT,
  distance_km DECIMAL(10, 3),
  air_quarter_hours DOUBLE,
  delay_f FLOAT,
  late BOOLEAN,
  sched_dep TIMESTAMP(3),
  sched_dep_ts BIGINT NOT NULL
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights-avro',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'avro'
);

INSERT INTO flights_avro
SELECT carrier, flight, tailnum, origin, dest, dep_delay,
  CAST(arr_delay AS BIGINT),
  distance * 1.609344,
  CAST(air_time AS DOUBLE) / 4,
  CAST(dep_delay AS FLOAT),
  arr_delay > 15,
  CAST(ts AS TIMESTAMP(3)),
  sched_dep_ts
FROM flights
WHERE `month` = 1;
