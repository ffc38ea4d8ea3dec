-- Interval join of flights with flights: the next departures of the same aircraft within 1 minute
-- to 3 hours after a flight's scheduled departure (first week of January; both sides bounded by
-- event time).
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

CREATE TABLE `result` (
  tailnum STRING,
  first_flight INT,
  first_dest STRING,
  next_flight INT,
  next_origin STRING,
  gap_min INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT a.tailnum, a.flight AS first_flight, a.dest AS first_dest,
  b.flight AS next_flight, b.origin AS next_origin,
  TIMESTAMPDIFF(MINUTE, a.ts, b.ts) AS gap_min
FROM flights AS a, flights AS b
WHERE a.tailnum = b.tailnum
  AND b.ts BETWEEN a.ts + INTERVAL '1' MINUTE AND a.ts + INTERVAL '3' HOUR
  AND a.`month` = 1 AND a.`day` <= 7 AND b.`month` = 1 AND b.`day` <= 7;
