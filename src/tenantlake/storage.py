"""Object storage behind one small interface: a local folder (the embedded default) or S3.

Keys are S3-style ('a/b/c.json', '/' separated, no leading slash) on both, so every path the
pipeline computes is the same in local mode and in production. An S3 store reaches its bucket
through a tenantlake.aws.AwsAccess (the Airflow connection's credentials, region and endpoint:
`open_store(url, access=central_access(conn_id))`); without one, boto3's defaults.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol


class Store(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def move(self, src: str, dst: str) -> None: ...
    def put_file(self, key: str, path: str) -> None: ...


class LocalStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.url = str(self.root)

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):  # S3 has no parent folders: never leave the root
            raise ValueError(f"{key}: not a key inside {self.root}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file (the same promise S3 gives).
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix)
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def put_file(self, key: str, path: str) -> None:
        """Take a finished local file (it is moved, not copied)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)

    def move(self, src: str, dst: str) -> None:
        target = self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(src), target)  # atomic on one filesystem

    def delete_prefix(self, prefix: str) -> int:
        base = self.path(prefix)
        if base.is_dir():
            n = sum(1 for p in base.rglob("*") if p.is_file())
            shutil.rmtree(base)
            return n
        if base.is_file():
            base.unlink()
            return 1
        return 0


class S3Store:
    def __init__(self, bucket: str, client=None, prefix: str = "", access=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.access = access
        if client is None:
            if access is None:
                from tenantlake.aws import AwsAccess  # only production and moto tests pay for boto3

                access = AwsAccess.default()
            client = access.client("s3")
        self.client = client
        self.url = f"s3://{bucket}/{self.prefix}"

    def _k(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str) -> list[str]:
        keys = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._k(prefix)):
            keys += [o["Key"][len(self.prefix):] for o in page.get("Contents", [])]
        return sorted(keys)

    def put_file(self, key: str, path: str) -> None:
        self.client.upload_file(path, self.bucket, self._k(key))  # multipart: streams from disk
        os.unlink(path)

    def move(self, src: str, dst: str) -> None:
        # One object is atomic on S3 (copy, then the source goes); a batch of several is not,
        # which is why readers trust the commit marker, not the listing.
        self.client.copy_object(Bucket=self.bucket, Key=self._k(dst),
                                CopySource={"Bucket": self.bucket, "Key": self._k(src)})
        self.client.delete_object(Bucket=self.bucket, Key=self._k(src))

    def __getstate__(self):
        # boto3 clients do not pickle; a worker process makes its own from the same access
        # (AwsAccess pickles as a snapshot of its settings and credentials).
        return {"bucket": self.bucket, "prefix": self.prefix, "access": self.access}

    def __setstate__(self, state):
        self.__init__(state["bucket"], prefix=state["prefix"], access=state.get("access"))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._k(k)} for k in keys[i:i + 1000]]},
            )
        return len(keys)


def open_store(url: str, client=None, access=None) -> Store:
    """'s3://bucket/prefix' (through `access`, an AwsAccess, or a ready S3 `client`) or a local
    folder path (both ignored)."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return S3Store(bucket, client=client, prefix=prefix, access=access)
    return LocalStore(url)
