-- Conformed creditor: every spelling of a creditor name ever loaded, from any agency, mapped to one
-- creditor. Rebuilt from all the debts on every refresh, so an alias added to the seed
-- (sql/seeds/creditor_aliases.csv -> ops.creditor_aliases) re-conforms history too.
-- The same rule in Python: tenantlake.creditors (tests hold the two to the same answers).
--   1. words: accented Latin letters plain (TRANSLATE: tenantlake.creditors' FOLD_FROM, FOLD_TO),
--      upper case, '&' as AND, apostrophes dropped (KOHL'S = KOHLS), any other run of
--      non-alphanumerics one space, dotted initials joined again (N.A. = NA, U.S.A. = USA ...).
--   2. the longest alias that is the words or their leading words ("CHASE" matches "CHASE BANK USA
--      NA", not "CHASEWOOD"); failing that, the same on what follows the first slash, for the
--      STORE/ISSUER spellings bureaus print ("AMZN/SYNCB", "THD/CBNA").
--   3. no alias: the spelling stands as its own creditor, under its words without trailing account
--      fragments (XXXX1234, #1234, ACCT NO 5678) and trailing noise words (NA, FSB, USA, BANK,
--      CARD SERVICES, LLC, INC ...), or where none are left (a name in another script) the
--      spelling as sent; ops.unmatched_creditors lists it for a data steward.
-- Only regex syntax POSIX (Redshift) and RE2 (DuckDB) share; the fragment and noise patterns are
-- anchored at the end, where both engines' match semantics take the same span. Redshift's
-- REGEXP_REPLACE replaces every match (sqlglot renders it for DuckDB as first-match-only, hence
-- dim_creditor.duckdb.sql: the same statement with DuckDB's 'g' flag).
CREATE TABLE core.dim_creditor DISTSTYLE ALL SORTKEY (spelling) AS
WITH spellings AS (
    -- history too: fact_debt_snapshot joins the spelling each past version carried
    SELECT creditor_name AS spelling FROM core.current_debt WHERE creditor_name IS NOT NULL
    UNION
    SELECT creditor_name FROM core.history_debt WHERE creditor_name IS NOT NULL
), texts AS (
    SELECT spelling, 1 AS part_no, spelling AS piece FROM spellings
    UNION ALL
    SELECT spelling, 2 AS part_no, SPLIT_PART(spelling, '/', 2) AS piece FROM spellings WHERE spelling LIKE '%/%'
), punctuated AS (
    SELECT spelling, part_no,
           TRIM(REGEXP_REPLACE(REPLACE(REPLACE(REPLACE(UPPER(TRANSLATE(piece,
                               'ÀÁÂÃÄÅĀĂĄÇĆĈĊČĎĐÈÉÊËĒĔĖĘĚĜĞĠĢĤĦÌÍÎÏĨĪĬĮİĴĶĹĻĽĿŁÑŃŅŇÒÓÔÕÖØŌŎŐŔŖŘŚŜŞŠŢŤŦÙÚÛÜŨŪŬŮŰŲŴÝŸŶŹŻŽàáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšţťŧùúûüũūŭůűųŵýÿŷźżžı',
                               'AAAAAAAAACCCCCDDEEEEEEEEEGGGGHHIIIIIIIIIJKLLLLLNNNNOOOOOOOOORRRSSSSTTTUUUUUUUUUUWYYYZZZAAAAAAAAACCCCCDDEEEEEEEEEGGGGHHIIIIIIIIJKLLLLLNNNNOOOOOOOOORRRSSSSTTTUUUUUUUUUUWYYYZZZI')), '&', ' AND '), '''', ''), '’', ''),
                               '[^A-Z0-9]+', ' ')) AS words
    FROM texts
), worded AS (
    SELECT spelling, part_no,
           TRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(' ' || words || ' ',
                ' U S A ', ' USA '), ' U S ', ' US '), ' N A ', ' NA '), ' F S B ', ' FSB '), ' L L C ', ' LLC ')) AS words
    FROM punctuated
), matched AS (
    SELECT w.spelling, w.part_no, w.words, a.alias, a.creditor,
           ROW_NUMBER() OVER (PARTITION BY w.spelling
                              ORDER BY CASE WHEN a.alias IS NULL THEN 1 ELSE 0 END, w.part_no, LENGTH(a.alias) DESC) AS best
    FROM worded AS w
    LEFT JOIN ops.creditor_aliases AS a
      ON w.words = a.alias OR w.words LIKE a.alias || ' %'
), named AS (
    SELECT spelling,
           REGEXP_REPLACE(REGEXP_REPLACE(words,
               '(( (ACCOUNT|ACCT|ACC|NUMBER|NBR|NUM|NO|ENDING|IN|LAST))* (XXX+|[X0-9]{2,}[0-9]|[0-9][X0-9]{2,}|[X0-9]+[0-9][X0-9]+))+$', ''),
               '( (NA|NATIONAL ASSOCIATION|FSB|USA|BANK|BK|CARD SERVICES|CARD SERVICE|CARD SERV|CARD SER|CARD SVCS|CARD SVC|CRD SVCS|CRD SVC|CARDS|CARD|LLC|INC|CORP|CORPORATION|CO|COMPANY|LTD))+$', '') AS normalised
    FROM worded
    WHERE part_no = 1
), conformed AS (
    SELECT m.spelling, m.alias, m.part_no, n.normalised,
           COALESCE(m.creditor, NULLIF(n.normalised, ''),
                    -- no words left: a name in another script stands as sent; punctuation alone names no one
                    CASE WHEN TRANSLATE(m.spelling, ' !"#$%&''()*+,-./:<=>?@[]^_`{|}~', '') <> '' THEN TRIM(m.spelling) END,
                    'UNKNOWN') AS creditor_name
    FROM matched AS m
    JOIN named AS n ON n.spelling = m.spelling
    WHERE m.best = 1
)
SELECT MD5(creditor_name) AS creditor_key,
       creditor_name,
       spelling,
       normalised AS normalised_name,
       alias,
       CASE WHEN alias IS NULL THEN NULL WHEN part_no = 1 THEN 'leading words' ELSE 'after slash' END AS matched_by
FROM conformed
