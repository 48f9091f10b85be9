"""f_pseudonym on Redshift: the handler of a Lambda UDF (sql/security/f_pseudonym.sql).

Redshift sends rows in batches, {"arguments": [[tenant_id, consumer_id], ...], "num_records": n,
...}, and takes back a JSON text {"success": true, "num_records": n, "results": [...]} in the same
order, or {"success": false, "error_msg": "..."}, which fails the query. The pseudonym is the one
the embedded default computes (tenantlake.pseudonyms), with the tenant's key read from Secrets
Manager under TENANTLAKE_PSEUDONYM_KEY_REF (a reference with {tenant_id} in it; by default the
registry's convention). `tenantlake package-udf` writes the deployment zip: this module,
pseudonyms and aws; boto3 comes with the Lambda runtime.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache

import boto3

from tenantlake.aws import AccessError
from tenantlake.pseudonyms import pseudonym, secret_key

DEFAULT_KEY_REF = "secretsmanager:tenantlake/{tenant_id}/pseudonym-key"
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # the registry's pattern: no other secret is reachable


def handler(event: dict, context=None) -> str:
    try:
        results = [_one(row) for row in event["arguments"]]
    except (AccessError, ValueError, KeyError, TypeError) as e:
        return json.dumps({"success": False, "error_msg": str(e)[:500]})
    return json.dumps({"success": True, "num_records": len(results), "results": results})


def _one(row: list | None) -> str | None:
    if row is None or row[0] is None or row[1] is None:
        return None  # as SQL functions do: a null in, a null out
    tenant_id, consumer_id = row
    if not TENANT_ID.fullmatch(tenant_id):
        raise ValueError(f"f_pseudonym: {tenant_id[:70]!r} is not a tenant id")
    ref = os.environ.get("TENANTLAKE_PSEUDONYM_KEY_REF", DEFAULT_KEY_REF).format(tenant_id=tenant_id)
    return pseudonym(secret_key(ref, _session()), tenant_id, consumer_id)


@cache
def _session() -> boto3.Session:
    return boto3.Session()
