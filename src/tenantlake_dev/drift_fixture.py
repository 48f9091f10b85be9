"""Drifting DynamoDB exports, written without the simulator, for the drift benchmark and its tests.

An agency that runs a newer app version than the contract knows sends, besides the declared
attributes: new fields inside a declared map (Debt `bureau.history`, a list of monthly maps), new
top-level attributes (a number, and an AWSDate text: pyarrow's JSON reader would infer such text
as a timestamp), enum values missing from the contract's list, and now and then a number sent as
text (`apr` as S "19.99"; rarely text that is no number at all, which cannot be coerced).

The code writes its own items and the AWS export layout (manifest-summary.json, manifest-files.json
with each file's MD5, gzip data files) so that what tenantlake reads was not shaped by tenantlake:
it shares no code with `tenantlake_dev.simulate` and imports nothing of `tenantlake`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class Mix:
    """Share of items carrying each kind of drift (independently drawn per item)."""

    nested: float = 0.35  # Debt: bureau.history, an undeclared L of M inside the declared map
    top_level: float = 0.20  # a new top-level N (Debt riskScore, Consumer creditScore)
    dated: float = 0.10  # a new top-level AWSDate S (hardshipSince / consentedOn)
    enum: float = 0.05  # accountType / status outside the contract's list
    as_text: float = 0.004  # a declared N sent as S holding valid number text (coerced)
    not_a_number: float = 0.0005  # a declared N sent as S holding no number (quarantined)


NO_DRIFT = Mix(0, 0, 0, 0, 0, 0)

CREDITORS = ("CHASE BANK USA NA", "Capital One", "CITIBANK NA", "DISCOVER FIN SVCS", "SYNCB/AMAZON",
             "AMEX", "WELLS FARGO CARD SER", "BARCLAYS BANK DELAWARE", "US BANK NA", "GS BANK USA")
ACCOUNT_TYPES = ("CREDIT_CARD", "PERSONAL_LOAN", "MEDICAL", "AUTO_LOAN", "STUDENT_LOAN")
NEW_ACCOUNT_TYPES = ("BNPL", "PAYDAY_LOAN")  # not in the contract's list
STATUSES = ("LEAD", "APPLYING", "COUNSELED", "ENROLLED")
NEW_STATUSES = ("ON_HOLD", "REFERRED_OUT")
STATES = ("CA", "TX", "NY", "FL", "IL", "OH", "GA", "WA")
START = datetime(2026, 9, 1, tzinfo=UTC)


def _s(v: str) -> dict:
    return {"S": v}


def _n(v) -> dict:
    return {"N": str(v)}


def _money(rng: random.Random, lo: int, hi: int) -> str:
    return f"{rng.randint(lo * 100, hi * 100) / 100:.2f}"


def _when(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.randint(0, 60 * 86400), milliseconds=rng.randint(0, 999))


def _amplify(typename: str, ident: str, rng: random.Random) -> dict:
    created = _when(rng)
    updated = created + timedelta(minutes=rng.randint(0, 5000))
    return {"id": _s(ident), "__typename": _s(typename),
            "createdAt": _s(created.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
            "updatedAt": _s(updated.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
            "_version": _n(rng.randint(1, 4)), "_lastChangedAt": _n(int(updated.timestamp() * 1000))}


def _number_as_text(item: dict, name: str, rng: random.Random, mix: Mix) -> None:
    r = rng.random()
    if r < mix.as_text:
        item[name] = {"S": item[name]["N"]}
    elif r < mix.as_text + mix.not_a_number:
        item[name] = {"S": item[name]["N"] + "%"}


def debt_item(rng: random.Random, n: int, mix: Mix) -> dict:
    item = _amplify("Debt", f"debt-{n:08d}", rng)
    balance = _money(rng, 50, 25_000)
    item.update({
        "consumerId": _s(f"cons-{n // 3:08d}"), "creditorName": _s(rng.choice(CREDITORS)),
        "accountType": _s(rng.choice(NEW_ACCOUNT_TYPES if rng.random() < mix.enum else ACCOUNT_TYPES)),
        "balance": _n(balance), "apr": _n(f"{rng.randint(0, 3599) / 100:.2f}"),
        "minimumPayment": _n(_money(rng, 10, 400)), "delinquencyDays": _n(rng.choice((0, 0, 0, 30, 60, 90))),
        "source": _s(rng.choice(("TRANSUNION", "SELF_REPORTED"))),
        "tags": {"SS": rng.sample(["hardship", "joint", "medical", "collections", "disputed"], rng.randint(1, 2))},
    })
    if item["source"]["S"] == "TRANSUNION":
        bureau = {"name": _s("TRANSUNION"), "pulledAt": item["createdAt"],
                  "tradeline": {"M": {"opened": _s(f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}"),
                                      "highCredit": _n(_money(rng, 500, 30_000))}}}
        if rng.random() < mix.nested:
            months = rng.randint(1, 3)
            bureau["history"] = {"L": [{"M": {"month": _s(f"2026-{9 - m:02d}"), "balance": _n(_money(rng, 50, 25_000))}}
                                       for m in range(months)]}
        item["bureau"] = {"M": bureau}
    elif rng.random() < mix.nested:  # self-reported debts carry the newer app's map too
        item["bureau"] = {"M": {"history": {"L": [{"M": {"month": _s("2026-08"), "balance": _n(balance)}}]}}}
    if rng.random() < mix.top_level:
        item["riskScore"] = _n(rng.randint(300, 850))
    if rng.random() < mix.dated:
        item["hardshipSince"] = _s((START - timedelta(days=rng.randint(0, 900))).date().isoformat())
    _number_as_text(item, "apr", rng, mix)
    return item


def consumer_item(rng: random.Random, n: int, mix: Mix) -> dict:
    item = _amplify("Consumer", f"cons-{n:08d}", rng)
    item.update({
        "firstName": _s(rng.choice(("Ana", "Ben", "Chloé", "Dmitri", "Eun-ji", "Femi"))),
        "lastName": _s(rng.choice(("García", "O'Neil", "Nguyen", "Smith", "Kowalski"))),
        "email": _s(f"person{n}@example.org"), "phone": _s(f"+1555{n % 10_000_000:07d}"),
        "ssnLast4": _s(f"{n % 10_000:04d}"),
        "dateOfBirth": _s(f"19{rng.randint(45, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"),
        "state": _s(rng.choice(STATES)), "postalCode": _s(f"{rng.randint(10_000, 99_999)}"),
        "householdSize": _n(rng.randint(1, 6)),
        "status": _s(rng.choice(NEW_STATUSES if rng.random() < mix.enum else STATUSES)),
        "counselorId": _s(f"coun-{rng.randint(1, 40):03d}"),
    })
    if rng.random() < mix.nested:
        item["address"] = {"M": {"line1": _s(f"{rng.randint(1, 9999)} Main St"), "city": _s("Springfield"),
                                 "verified": {"BOOL": rng.random() < 0.5}}}
    if rng.random() < mix.top_level:
        item["creditScore"] = _n(rng.randint(300, 850))
    if rng.random() < mix.dated:
        item["consentedOn"] = _s((START + timedelta(days=rng.randint(0, 60))).date().isoformat())
    _number_as_text(item, "householdSize", rng, mix)
    return item


ITEMS = {"Debt": debt_item, "Consumer": consumer_item}


@dataclass
class Written:
    summary_key: str
    items: int
    files: list[str] = field(default_factory=list)  # data file keys


def write_export(root: Path, *, tenant_id: str, entity: str, items: int, files: int, mix: Mix, seed: int = 7,
                 account: str = "111122223333", export_id: str = "01795000000000-d71f7a0e",
                 export_time: datetime = datetime(2026, 11, 1, tzinfo=UTC)) -> Written:
    """A FULL export in AWS's layout under root/tenant=<id>/table=<entity>/AWSDynamoDB/<export id>/."""
    rng = random.Random(seed)
    make = ITEMS[entity]
    prefix = f"tenant={tenant_id}/table={entity}"
    base = f"{prefix}/AWSDynamoDB/{export_id}"
    (root / base / "data").mkdir(parents=True, exist_ok=True)
    (root / base / "_started").write_bytes(b"")
    entries, keys, n = [], [], 0
    for f in range(files):
        count = items // files + (f < items % files)
        lines = []
        for _ in range(count):
            lines.append(json.dumps({"Item": make(rng, n, mix)}, separators=(",", ":"), ensure_ascii=False))
            n += 1
        body = gzip.compress(("\n".join(lines) + "\n").encode() if lines else b"", compresslevel=6, mtime=0)
        key = f"{base}/data/{hashlib.sha1(f'{seed}-{f}'.encode()).hexdigest()[:26]}.json.gz"
        (root / key).write_bytes(body)
        keys.append(key)
        entries.append({"itemCount": count, "md5Checksum": base64.b64encode(hashlib.md5(body).digest()).decode(),
                        "etag": hashlib.md5(body).hexdigest(), "dataFileS3Key": key})
    manifest = "".join(json.dumps(e) + "\n" for e in entries).encode()
    (root / base / "manifest-files.json").write_bytes(manifest)
    (root / base / "manifest-files.checksum").write_text(hashlib.md5(manifest).hexdigest())
    table_arn = f"arn:aws:dynamodb:us-east-1:{account}:table/{entity}-drift-prod"
    stamp = export_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    summary = {"version": "2020-06-30", "exportArn": f"{table_arn}/export/{export_id}", "startTime": stamp,
               "endTime": stamp, "tableArn": table_arn, "tableId": "00000000-0000-4000-8000-000000000000",
               "exportTime": stamp, "s3Bucket": "central-landing", "s3Prefix": prefix, "s3SseAlgorithm": "AES256",
               "s3SseKmsKeyId": None, "manifestFilesS3Key": f"{base}/manifest-files.json",
               "billedSizeBytes": sum(len((root / k).read_bytes()) for k in keys), "itemCount": items,
               "outputFormat": "DYNAMODB_JSON"}
    body = json.dumps(summary).encode()
    (root / base / "manifest-summary.json").write_bytes(body)
    (root / base / "manifest-summary.checksum").write_text(hashlib.md5(body).hexdigest())
    return Written(f"{base}/manifest-summary.json", items, keys)
