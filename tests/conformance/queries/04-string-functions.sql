-- String functions: UPPER, LOWER, CONCAT (NULL in, NULL out), ||, SUBSTRING (FROM/FOR and comma
-- forms), CHAR_LENGTH, TRIM (BOTH/LEADING/TRAILING), LIKE.
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
  sched_dep_ts BIGINT,
  route STRING,
  lower_carrier STRING,
  upper_route STRING,
  tail_digits STRING,
  tail_prefix STRING,
  tail_len INT,
  trimmed STRING,
  ltrim STRING,
  rtrim STRING,
  with_null STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT
  tailnum,
  sched_dep_ts,
  origin || '-' || dest AS route,
  LOWER(carrier) AS lower_carrier,
  UPPER(CONCAT(LOWER(origin), '>', LOWER(dest))) AS upper_route,
  SUBSTRING(tailnum FROM 2 FOR 3) AS tail_digits,
  SUBSTRING(tailnum, 1, 2) AS tail_prefix,
  CHAR_LENGTH(tailnum) AS tail_len,
  TRIM(CONCAT('  ', carrier, '  ')) AS trimmed,
  TRIM(LEADING 'N' FROM tailnum) AS ltrim,
  TRIM(TRAILING 'A' FROM tailnum) AS rtrim,
  CONCAT(carrier, CAST(dep_delay AS STRING)) AS with_null
FROM flights
WHERE `month` = 1 AND `day` = 4 AND (tailnum LIKE 'N9%' OR tailnum IS NULL);
