-- Counselors (agency staff, not consumers), current state.
SELECT tenant_id, id AS counselor_id, name AS counselor_name, certification, active,
       CASE WHEN _removed OR NVL(is_deleted, FALSE) THEN TRUE ELSE FALSE END AS is_deleted
FROM core.current_counselor
