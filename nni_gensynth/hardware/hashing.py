"""The SHA-256 of a file's bytes: a model's identity (arch hash, name on a device) and the
runner's version."""
from __future__ import annotations

import hashlib
import os
from typing import Union

_CHUNK = 1 << 20


def file_sha256(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
