-- Event-time temporal LEFT JOIN with weather as a versioned table: flights of 1 January,
-- including the ones before the first weather hour (06:00 UTC), which get NULL weather.
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
  WATERMARK FOR ts AS ts - INTERVAL '1' HOUR,
  PRIMARY KEY (origin) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'weather',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'raw',
  'value.format' = 'json'
);

CREATE TABLE `result` (
  carrier STRING,
  flight INT,
  origin STRING,
  sched_dep_ts BIGINT,
  weather_hour STRING,
  humid DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT f.carrier, f.flight, f.origin, f.sched_dep_ts, w.time_hour AS weather_hour, w.humid
FROM flights AS f
LEFT JOIN weather FOR SYSTEM_TIME AS OF f.ts AS w
  ON f.origin = w.origin
WHERE f.`month` = 1 AND f.`day` = 1;
