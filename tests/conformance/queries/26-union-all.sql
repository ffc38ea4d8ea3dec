-- UNION ALL of two projections of flights (long EWR flights and cancelled JFK flights, with a
-- constant tag column) and one of weather (foggy hours), into one append-only result.
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
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE `result` (
  kind STRING,
  origin STRING,
  ts_ms BIGINT,
  detail STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT 'long' AS kind, origin, sched_dep_ts AS ts_ms, dest AS detail
FROM flights WHERE origin = 'EWR' AND distance > 2500 AND `month` = 1
UNION ALL
SELECT 'cancelled' AS kind, origin, sched_dep_ts AS ts_ms, CONCAT(carrier, CAST(flight AS STRING))
FROM flights WHERE origin = 'JFK' AND dep_time IS NULL AND `month` = 1
UNION ALL
SELECT 'fog' AS kind, origin, time_ts AS ts_ms, CAST(visib AS STRING)
FROM weather WHERE visib < 0.5;
