-- Conformed creditor: every bureau spelling seen in any agency maps to one creditor by its leading
-- words (the longest alias that starts the normalised spelling); unknown spellings stand alone.
CREATE TABLE core.dim_creditor DISTSTYLE ALL SORTKEY (spelling) AS
WITH spellings AS (
    SELECT DISTINCT creditor_name AS spelling,
           UPPER(TRIM(REPLACE(REPLACE(REPLACE(creditor_name, '/', ' '), '.', ' '), ',', ' '))) AS normalised
    FROM core.current_debt
    WHERE creditor_name IS NOT NULL
), matched AS (
    SELECT s.spelling, s.normalised, a.creditor,
           ROW_NUMBER() OVER (PARTITION BY s.spelling ORDER BY LENGTH(a.alias) DESC) AS best
    FROM spellings AS s
    LEFT JOIN ops.creditor_aliases AS a
      ON s.normalised = a.alias OR s.normalised LIKE a.alias || ' %'
)
SELECT MD5(NVL(creditor, normalised)) AS creditor_key,
       NVL(creditor, normalised) AS creditor_name,
       spelling
FROM matched
WHERE best = 1
