-- The avro format, both ways. `result` is an `avro` sink: each engine writes the first week of
-- January's flights with the table's derived schema (NOT NULL and nullable columns, INT, BIGINT,
-- DECIMAL, DOUBLE, FLOAT, BOOLEAN, TIMESTAMP(3)); the suite compares the value bytes, so
-- kstream's Avro must be byte for byte Flink's. `result2` (JSON) selects from the `flights-avro`
-- topic, which kstream wrote in the same format (inputs/flights-avro.sql): both engines decode
-- every type of it (DECIMAL arithmetic and text, TIMESTAMP(3), the computed rowtime).
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
  sched_dep_ts BIGINT NOT NULL,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' DAY
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights-avro',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'avro'
);

CREATE TABLE `result` (
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
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'avro'
);

CREATE TABLE `result2` (
  carrier STRING,
  flight INT,
  tailnum STRING,
  arr_delay BIGINT,
  double_km DECIMAL(12, 3),
  km_text STRING,
  air_quarter_hours DOUBLE,
  delay_f FLOAT,
  late BOOLEAN,
  sched_dep TIMESTAMP(3),
  rowtime TIMESTAMP_LTZ(3),
  sched_dep_ts BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result2_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

EXECUTE STATEMENT SET
BEGIN
INSERT INTO `result`
SELECT carrier, flight, tailnum, origin, dest, dep_delay,
  CAST(arr_delay AS BIGINT),
  distance * 1.609344,
  CAST(air_time AS DOUBLE) / 4,
  CAST(dep_delay AS FLOAT),
  arr_delay > 15,
  CAST(ts AS TIMESTAMP(3)),
  sched_dep_ts
FROM flights
WHERE `month` = 1 AND `day` <= 7;

INSERT INTO `result2`
SELECT carrier, flight, tailnum, arr_delay, distance_km * 2, CAST(distance_km AS STRING),
  air_quarter_hours, delay_f, late, sched_dep, ts, sched_dep_ts
FROM flights_avro
WHERE dest = 'LAX' AND (late OR arr_delay IS NULL OR distance_km > 4000);
END;
