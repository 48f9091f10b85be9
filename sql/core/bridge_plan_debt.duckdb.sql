-- DuckDB rendering of bridge_plan_debt.sql: sqlglot cannot carry Redshift's PartiQL unnest.
SELECT p.tenant_id, p.id AS plan_id, UNNEST(p.enrolled_debt_ids) AS debt_id
FROM core.current_plan AS p
