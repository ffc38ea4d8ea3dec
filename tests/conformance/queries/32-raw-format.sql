-- The raw format: a table with one STRING column holding each weather record's whole value
-- (its JSON text), read with JSON_VALUE and CHAR_LENGTH.
CREATE TABLE raw_weather (
  line STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'weather',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'raw'
);

CREATE TABLE `result` (
  origin STRING,
  time_hour STRING,
  temp STRING,
  text_length INT
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'format' = 'json'
);

INSERT INTO `result`
SELECT JSON_VALUE(line, '$.origin') AS origin,
  JSON_VALUE(line, '$.time_hour') AS time_hour,
  JSON_VALUE(line, '$.temp') AS temp,
  CHAR_LENGTH(line) AS text_length
FROM raw_weather
WHERE JSON_VALUE(line, '$.month') = '1' AND JSON_VALUE(line, '$.day') = '2';
