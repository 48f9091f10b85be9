"""Just enough IAM policy evaluation for the double: a role's trust policy (who may AssumeRole,
with which sts:ExternalId) and a bucket policy (may a tenant's export write under this key).

Covered: Effect Allow/Deny (an explicit Deny wins; nothing allowed is a refusal), Principal "*" /
{"AWS": account id | account root | role ARN | user ARN}, Action and Resource with * and ?
wildcards, and the condition operators StringEquals, StringNotEquals, StringLike, ArnEquals,
ArnLike and Bool over the context keys the caller passes. Anything else (NotPrincipal, NotAction,
another operator, a ForAnyValue: qualifier) fails closed: an Allow statement using it does not
apply, a Deny statement using it does. Identity policies of the caller are not evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ASSUMED_ROLE = re.compile(r"^arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/.+$")
ROLE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:.*/)?([^/]+)$")
ROOT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):root$")


@dataclass(frozen=True)
class Caller:
    """Who makes a request: the ARN GetCallerIdentity gives, and its account."""

    arn: str
    account: str


def allows(policy: dict, caller: Caller, action: str, resource: str | None = None,
           context: dict[str, str] | None = None) -> bool:
    ctx = {k.lower(): v for k, v in {"aws:PrincipalArn": caller.arn, "aws:PrincipalAccount": caller.account,
                                      **(context or {})}.items()}
    statements = policy.get("Statement", [])
    allowed = False
    for st in statements if isinstance(statements, list) else [statements]:
        deny = st.get("Effect") == "Deny"
        if not _applies(st, caller, action, resource, ctx, deny):
            continue
        if deny:
            return False
        allowed = True
    return allowed


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _applies(st: dict, caller: Caller, action: str, resource: str | None, ctx: dict, deny: bool) -> bool:
    if {"NotPrincipal", "NotAction", "NotResource"} & st.keys():
        return deny  # not modelled: fail closed
    if "Principal" in st and not _principal(st["Principal"], caller):
        return False
    if not any(_like(a, action, case=False) for a in _as_list(st.get("Action", []))):
        return False
    if resource is not None and "Resource" in st and not any(_like(r, resource) for r in _as_list(st["Resource"])):
        return False
    return _conditions(st.get("Condition", {}), ctx, deny)


def _like(pattern: str, value: str, case: bool = True) -> bool:
    """IAM wildcards: * any run of characters, ? one; nothing else is special (unlike fnmatch's []."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _principal(principal, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for p in _as_list(principal.get("AWS", [])):
        if p == "*" or p == caller.arn or p == caller.account:
            return True
        if (m := ROOT.match(p)) and m.group(1) == caller.account:
            return True
        # A role ARN names every session of that role (its path is not part of the session ARN).
        role, session = ROLE.match(p), ASSUMED_ROLE.match(caller.arn)
        if role and session and role.groups() == session.groups():
            return True
    return False


def _conditions(conditions: dict, ctx: dict, deny: bool) -> bool:
    for operator, tests in conditions.items():
        for key, wanted in tests.items():
            have = ctx.get(key.lower())
            wanted = [str(w) for w in _as_list(wanted)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = have is not None and have in wanted
            elif operator == "StringNotEquals":
                ok = have is not None and have not in wanted
            elif operator in ("StringLike", "ArnLike"):
                ok = have is not None and any(_like(w, have) for w in wanted)
            elif operator == "Bool":
                ok = have is not None and str(have).lower() in [w.lower() for w in wanted]
            else:
                return deny  # not modelled: fail closed
            if not ok:
                return False
    return True
