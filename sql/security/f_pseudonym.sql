-- The consumer pseudonym on Redshift: a Lambda UDF (handler tenantlake.udf.handler, packaged by
-- `tenantlake package-udf`) computing the same keyed HMAC as the embedded default, with each
-- tenant's key read from Secrets Manager by the Lambda. The cluster's default IAM role must be
-- allowed lambda:InvokeFunction on it.
CREATE OR REPLACE EXTERNAL FUNCTION f_pseudonym (VARCHAR, VARCHAR)
RETURNS VARCHAR
STABLE
LAMBDA 'tenantlake-f-pseudonym'
IAM_ROLE default
MAX_BATCH_ROWS 10000;
-- Anyone who may call it could pseudonymise a guessed consumer id of any tenant and look for it:
-- only the loader (which builds core and the protected views) may.
REVOKE EXECUTE ON FUNCTION f_pseudonym (VARCHAR, VARCHAR) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION f_pseudonym (VARCHAR, VARCHAR) TO ROLE tenantlake_loader;
