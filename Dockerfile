# The Airflow image with tenantlake's pinned dependencies (the same constraints as `make test`).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/tenantlake/
RUN pip install --no-cache-dir -r /opt/tenantlake/requirements.txt -c /opt/tenantlake/constraints.txt
