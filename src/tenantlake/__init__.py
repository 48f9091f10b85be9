"""tenantlake: many tenants' DynamoDB exports into one trustworthy, cross-tenant warehouse.

The runtime package Airflow imports as a library (installed from pyproject.toml, never through the
plugins folder). Development tools (the fleet simulator, the demo, the HTML report, the AWS export
double) live in `tenantlake_dev`, which this package never imports (an import contract in
pyproject.toml, checked by `make test`).
"""
