-- A raw sink: the value is the text of the table's one STRING column (besides its key column,
-- written as a raw key under EXCEPT_KEY); a NULL line is a null value, as Flink's raw format
-- writes it (the tailnum of some flights is NULL). Keys and values are compared ("keyed").
CREATE TABLE flights (
  carrier STRING, flight INT, tailnum STRING, origin STRING, dest STRING,
  `month` INT, `day` INT
) WITH (
  'connector' = 'kafka',
  'topic' = 'flights',
  'properties.bootstrap.servers' = '${bootstrap}',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE `result` (
  origin STRING,
  line STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${result_topic}',
  'properties.bootstrap.servers' = '${bootstrap}',
  'key.format' = 'raw',
  'key.fields' = 'origin',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
);

INSERT INTO `result`
SELECT origin, CONCAT(carrier, ' ', CAST(flight AS STRING), ' ', tailnum, ' to ', dest) AS line
FROM flights
WHERE `month` = 1 AND `day` <= 2;
