"""Consumer pseudonyms: HMAC-SHA256 with a key per tenant, held by reference in a secret store.

In production the key comes from the tenant's `pseudonym_key_ref` (Secrets Manager / SSM), as 64 hex
characters. Pseudonyms are made once, with a batch's protected projection, before it is published
(tenantlake.privacy): the warehouse never computes one and never sees a clear consumer id. On the
embedded default the key is a random one created once under <home>/secrets (mode 0600), standing
in for the secret store. Without the key a pseudonym cannot be turned back into a consumer id, and
the same consumer gets the same pseudonym in every table of its tenant (so joins work).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path


def local_key(home: str | os.PathLike, tenant_id: str) -> bytes:
    path = Path(home) / "secrets" / f"pseudonym-{tenant_id}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # atomic, and refuses to replace a key another thread just made
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes()


def pseudonym(key: bytes, tenant_id: str, consumer_id: str) -> str:
    return pair_pseudonym(key, f"{tenant_id}|{consumer_id}".encode())


def pair_pseudonym(key: bytes, pair: bytes) -> str:
    """The pseudonym of a consumer given as the text it is keyed over, b"<tenant>|<consumer id>"."""
    return hmac.digest(key, pair, "sha256")[:16].hex()  # one-shot: C fast path; 32 hex characters


def key_from_secret(ref: str, value: str) -> bytes:
    """A key as the secret store holds it: 64 hex characters (32 random bytes). Errors name the
    reference, never the value."""
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise ValueError(f"{ref}: a pseudonym key is 64 hex characters; this secret is not hex") from None
    if len(key) < 32:
        raise ValueError(f"{ref}: a pseudonym key is 32 bytes (64 hex characters); this one is {len(key)}")
    return key


def secret_key(ref: str, session) -> bytes:
    """A key from the secret store, by reference (a tenant's pseudonym_key_ref); the value is cached
    as every resolved secret is (tenantlake.aws.SECRET_TTL), so a rotated key is picked up."""
    from tenantlake.aws import resolve_secret

    return key_from_secret(ref, resolve_secret(ref, session))
