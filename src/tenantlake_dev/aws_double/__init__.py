"""tenantlake's AWS export double: moto, extended from outside where it does not behave like AWS.

What it adds to moto 5.2.5 (see ../shared/reference/measurements.md for moto's gaps):
  - AssumeRole reads the role's trust policy: the caller must be a trusted principal and bring
    the sts:ExternalId the policy requires, or it gets AccessDenied (policy.py, sts.py);
  - DynamoDB remembers every write with the double's clock, so ExportTableToPointInTime answers
    FULL (ExportTime) and INCREMENTAL (ExportFromTime / ExportToTime / ExportViewType) requests,
    refuses what DynamoDB refuses, honours ClientToken, stays IN_PROGRESS for a while, writes
    AWS's layout (_started, manifests with MD5 and item counts, gzip DynamoDB JSON) under an
    export id that matches the ARN, into the bucket S3BucketOwner names, as far as the bucket
    policy lets the tenant; DescribeExport and ListExports tell it as DynamoDB does
    (dynamodb.py);
  - a clock, timing and failure rules tests can steer (state.py, control.py).

In-process (one pytest process, moto's mock_aws underneath):

    with export_double() as double:
        seeded = seed(registry, {"agency-001": {"Debt": [...]}})
        central = seeded.central_access()          # as the Airflow connection would give it
        double.fail_exports("Debt-k3j2h5-prod", "S3AccessDenied", "no")

As a server (another process, docker-compose, the services test):

    python -m tenantlake_dev.aws_double serve --port 5000 --seed --seed-out seeded.json
    RemoteDouble("http://127.0.0.1:5000").advance(3600)

or in this process: `with DoubleServer() as server: seed(registry, endpoint_url=server.endpoint_url)`.

A simulated fleet written into the tables, each change at its time (fleet.py), for end-to-end
runs whose truth is known: `played = play_fleet(registry, FleetSpec(...), double)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tenantlake_dev.aws_double.control import DoubleControl, ExportDouble, RemoteDouble
from tenantlake_dev.aws_double.fleet import PlayedFleet, play_fleet, write_changes
from tenantlake_dev.aws_double.patches import patched
from tenantlake_dev.aws_double.seed import Seeded, account_client, seed, tenant_client, write_items
from tenantlake_dev.aws_double.server import DoubleServer
from tenantlake_dev.aws_double.state import STATE, Clock

__all__ = ["STATE", "Clock", "DoubleControl", "DoubleServer", "ExportDouble", "PlayedFleet", "RemoteDouble", "Seeded",
           "account_client", "export_double", "patched", "play_fleet", "seed", "tenant_client", "write_changes",
           "write_items"]


@contextmanager
def export_double(**timing) -> Iterator[ExportDouble]:
    """The double in this process: moto's mock_aws with the double's patches, its own state
    reset on the way in and out. `timing`: seconds / describes / data_files (state.Timing)."""
    from moto import mock_aws

    STATE.reset()
    double = ExportDouble()
    if timing:
        double.configure(**timing)
    try:
        with patched(), mock_aws():
            yield double
    finally:
        STATE.reset()
