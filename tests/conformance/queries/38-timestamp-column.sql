-- A TIMESTAMP_LTZ(3) column read from the JSON text ('json.timestamp-format.standard' =
-- 'ISO-8601': 2013-01-01T10:00:00Z) as the rowtime: daily TUMBLE windows per origin over the
-- weather, with the first and last observation times and the window_time (an LTZ rowtime).
CREATE TABLE weather (
  origin STRING, temp DOUBLE, humid DOUBLE,
  time_hour TIMESTAMP_LTZ(3),
  WATERMARK FOR time_hour AS time_hour - INTERVAL '1' HOUR
) WITH (
  'connector' = 'kafka',
  'topic' = 'weather',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601'
);

CREATE TABLE `result` (
  origin STRING,
  window_start TIMESTAMP(3),
  window_time TIMESTAMP_LTZ(3),
  observations BIGINT,
  first_obs TIMESTAMP_LTZ(3),
  last_obs TIMESTAMP_LTZ(3),
  max_temp DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT origin, window_start, window_time, COUNT(*) AS observations,
  MIN(time_hour) AS first_obs, MAX(time_hour) AS last_obs, MAX(temp) AS max_temp
FROM TABLE(TUMBLE(TABLE weather, DESCRIPTOR(time_hour), INTERVAL '1' DAY))
GROUP BY origin, window_start, window_end, window_time;
