-- Window join: flights and weather both in 1-hour TUMBLE windows, joined on origin and the same
-- window (window_start, window_end): each flight of 1 January with its hour's weather.
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
  carrier STRING,
  flight INT,
  origin STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  temp DOUBLE,
  wind_speed DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT f.carrier, f.flight, f.origin, f.window_start, f.window_end, w.temp, w.wind_speed
FROM (
  SELECT * FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' HOUR))
  WHERE `month` = 1 AND `day` = 1
) AS f
JOIN (
  SELECT * FROM TABLE(TUMBLE(TABLE weather, DESCRIPTOR(ts), INTERVAL '1' HOUR))
) AS w
ON f.origin = w.origin AND f.window_start = w.window_start AND f.window_end = w.window_end;
