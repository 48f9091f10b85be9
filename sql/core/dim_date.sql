-- Calendar days 2020-01-01 .. 2030-12-31.
WITH RECURSIVE days (calendar_date) AS (
    SELECT CAST('2020-01-01' AS DATE)
    UNION ALL
    SELECT CAST(DATEADD(day, 1, calendar_date) AS DATE) FROM days WHERE calendar_date < CAST('2030-12-31' AS DATE)
)
SELECT calendar_date,
       CAST(EXTRACT(year FROM calendar_date) AS INTEGER) AS year,
       CAST(EXTRACT(month FROM calendar_date) AS INTEGER) AS month,
       CAST(DATE_TRUNC('month', calendar_date) AS DATE) AS month_start
FROM days
