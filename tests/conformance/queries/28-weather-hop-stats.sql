-- HOP window over the weather stream (size 1 day, slide 12 hours) per origin with DOUBLE
-- aggregates: AVG, MIN, MAX of temp, SUM of precip, and COUNT of gust readings (NULLs skipped).
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
  origin STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  avg_temp DOUBLE,
  min_temp DOUBLE,
  max_temp DOUBLE,
  precip DOUBLE,
  gusts BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, window_start, window_end, AVG(temp) AS avg_temp, MIN(temp) AS min_temp,
  MAX(temp) AS max_temp, SUM(precip) AS precip, COUNT(wind_gust) AS gusts
FROM TABLE(HOP(TABLE weather, DESCRIPTOR(ts), INTERVAL '12' HOUR, INTERVAL '1' DAY))
GROUP BY origin, window_start, window_end;
