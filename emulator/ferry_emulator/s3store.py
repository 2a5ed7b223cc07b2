"""Reads and writes moto's S3 in-process. TEST INFRASTRUCTURE.

The extension runs in the same process as moto's server, so it uses moto's S3 backend directly
rather than HTTP: counting objects for a task, reading a DataSync manifest, writing FSx
completion reports and DataSync task reports. Objects written here behave as if an SDK had put
them (moto's S3 event notifications included).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str  # without a leading slash; may be empty

    @classmethod
    def parse(cls, url: str) -> S3Url | None:
        """``s3://bucket[/prefix]`` → S3Url; anything else → None."""
        if not isinstance(url, str) or not url.startswith("s3://"):
            return None
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            return None
        return cls(bucket, prefix.lstrip("/"))

    def contains(self, other: S3Url) -> bool:
        """True when ``other`` is this location or lies under it (whole path segments)."""
        if other.bucket != self.bucket:
            return False
        base = self.prefix.rstrip("/")
        return not base or other.prefix == base or other.prefix.startswith(base + "/")

    def key_prefix(self) -> str:
        """The key prefix that selects the objects under this location."""
        base = self.prefix.rstrip("/")
        return base + "/" if base else ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def _backend(account: str):
    from moto.s3.models import s3_backends  # noqa: PLC0415

    return s3_backends[account]["aws"]


def bucket_exists(account: str, bucket: str) -> bool:
    return bucket in _backend(account).buckets


def list_objects(account: str, bucket: str, prefix: str = "") -> list[tuple[str, int]] | None:
    """``(key, size)`` of the current version of every object under ``prefix``, sorted by key;
    None when the bucket does not exist."""
    from moto.s3.models import FakeKey  # noqa: PLC0415

    found = _backend(account).buckets.get(bucket)
    if found is None:
        return None
    out = []
    for name, key in list(found.keys.items()):
        if name.startswith(prefix) and isinstance(key, FakeKey):
            out.append((name, int(key.size)))
    out.sort()
    return out


def get_object(account: str, bucket: str, key: str) -> bytes | None:
    from moto.s3.models import FakeKey  # noqa: PLC0415

    found = _backend(account).buckets.get(bucket)
    if found is None:
        return None
    obj = found.keys.get(key)
    return bytes(obj.value) if isinstance(obj, FakeKey) else None


def put_object(account: str, bucket: str, key: str, data: bytes) -> bool:
    """Writes an object; False when the bucket does not exist."""
    backend = _backend(account)
    if bucket not in backend.buckets:
        return False
    backend.put_object(bucket, key, data)
    return True
