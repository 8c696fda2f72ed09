-- Workload for bench/programs.mjs: sqlite3 in memory: inserts, an index, joins, group by, sorts.
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
INSERT INTO t(k, s) SELECT (i * 7919) % 10007, printf('name-%08d-%s', i, hex(i * 2654435761)) FROM n;
CREATE INDEX t_k ON t(k);
CREATE TABLE u AS SELECT k, count(*) AS c, max(s) AS m FROM t GROUP BY k;
SELECT count(*), sum(c), min(m) FROM u;
SELECT t.k, count(*) FROM t JOIN u ON t.k = u.k WHERE u.c > 19 GROUP BY t.k ORDER BY 2 DESC, 1 LIMIT 5;
SELECT substr(s, 1, 9), count(*) FROM t GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;
UPDATE t SET s = s || s WHERE k % 3 = 0;
SELECT sum(length(s)) FROM t;
DELETE FROM t WHERE k % 5 = 0;
SELECT count(*), total(length(s)) FROM t;
