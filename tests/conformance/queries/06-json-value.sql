-- JSON_VALUE on a STRING: a JSON literal (nested path, RETURNING INT/DOUBLE, missing path ->
-- NULL) and a JSON document built per row from columns with CONCAT. (Flink 2.2 fails with
-- RETURNING DOUBLE on an integral JSON number, ClassCastException Integer -> BigDecimal: the
-- document's number is read as STRING and CAST instead.)
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
  carrier STRING,
  flight INT,
  sched_dep_ts BIGINT,
  lit_int INT,
  lit_double DOUBLE,
  lit_str STRING,
  lit_missing STRING,
  doc_dest STRING,
  doc_distance INT,
  doc_half DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT
  carrier,
  flight,
  sched_dep_ts,
  JSON_VALUE('{"a": {"b": 7}, "c": "x", "d": 2.5}', '$.a.b' RETURNING INT) AS lit_int,
  JSON_VALUE('{"a": {"b": 7}, "c": "x", "d": 2.5}', '$.d' RETURNING DOUBLE) AS lit_double,
  JSON_VALUE('{"a": {"b": 7}, "c": "x", "d": 2.5}', '$.c') AS lit_str,
  JSON_VALUE('{"a": {"b": 7}, "c": "x", "d": 2.5}', '$.nope') AS lit_missing,
  JSON_VALUE(doc, '$.dest') AS doc_dest,
  JSON_VALUE(doc, '$.distance' RETURNING INT) AS doc_distance,
  CAST(JSON_VALUE(doc, '$.distance') AS DOUBLE) / 2 AS doc_half
FROM (
  SELECT carrier, flight, sched_dep_ts,
    CONCAT('{"dest": "', dest, '", "distance": ', CAST(distance AS STRING), '}') AS doc
  FROM flights
  WHERE `month` = 1 AND `day` = 6 AND carrier = 'B6'
);
