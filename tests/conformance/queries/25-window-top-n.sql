-- Window Top-N: per day (TUMBLE 1 day), the 3 carriers with the most departures from JFK
-- (ROW_NUMBER over the window aggregate, PARTITION BY window_start, window_end; ties broken by
-- carrier); append-only.
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
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  rn BIGINT,
  carrier STRING,
  flights BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT window_start, window_end, rn, carrier, flights
FROM (
  SELECT *, ROW_NUMBER() OVER (
      PARTITION BY window_start, window_end ORDER BY flights DESC, carrier ASC) AS rn
  FROM (
    SELECT window_start, window_end, carrier, COUNT(*) AS flights
    FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' DAY))
    WHERE origin = 'JFK'
    GROUP BY window_start, window_end, carrier
  )
)
WHERE rn <= 3;
