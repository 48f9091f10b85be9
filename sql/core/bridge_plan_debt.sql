-- Which debts each plan enrolls (the plan's enrolledDebtIds set, unnested with PartiQL).
SELECT p.tenant_id, p.id AS plan_id, CAST(d AS VARCHAR(128)) AS debt_id
FROM core.current_plan AS p, p.enrolled_debt_ids AS d
