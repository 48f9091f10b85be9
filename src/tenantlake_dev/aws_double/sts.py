"""AssumeRole as IAM does it: the role must exist and its trust policy must let the caller in,
with the sts:ExternalId it requires. moto 5.2.5 assumes any role, existing or not."""

from __future__ import annotations

import json
from urllib.parse import unquote

from tenantlake_dev.aws_double.policy import Caller, allows


def trust_policy(role_arn: str) -> dict | None:
    """The role's trust policy, or None when there is no such role."""
    from moto.iam.models import iam_backends

    try:
        _, partition, _, _, account, _ = role_arn.split(":", 5)
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:  # moto's NotFoundException, or an ARN that is not one
        return None
    document = role.assume_role_policy_document
    if isinstance(document, dict):
        return document
    try:
        return json.loads(document)
    except json.JSONDecodeError:
        return json.loads(unquote(document))  # IAM's API hands documents around URL-encoded


def token_assume_role(original):
    def assume_role(self):
        from moto.core.exceptions import AccessDeniedError

        role_arn = self._get_param("RoleArn")
        _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
        external_id = self._get_param("ExternalId")
        policy = trust_policy(role_arn)
        context = {"sts:ExternalId": external_id} if external_id is not None else {}
        if policy is None or not allows(policy, Caller(caller_arn, caller_account), "sts:AssumeRole", None, context):
            # AWS gives the same answer for a missing role, an untrusted caller and a wrong ExternalId.
            raise AccessDeniedError(caller_arn, f"sts:AssumeRole on resource: {role_arn}")
        return original(self)
    return assume_role
