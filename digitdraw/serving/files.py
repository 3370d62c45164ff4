"""The package's one atomic-write helper and one checksum helper.

Every file DigitDraw writes (data caches, saved models, screenshots) goes
through ``atomic_write``: the bytes land in a uniquely named temporary file
beside the target, are flushed to disk, and then replace the target by one
rename. A reader therefore sees the old file or the new one, never half of
one, and two writers never share a temporary name; the last rename wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_CHUNK = 1 << 20


def sha256(*chunks: bytes | memoryview) -> str:
    """Hex sha256 of the concatenation of some byte strings (or buffers, such as arrays' memory)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks so that large files stay cheap in memory."""
    with open(path, "rb") as handle:
        return sha256(*iter(lambda: handle.read(_CHUNK), b""))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it is removed."""
    if mode not in ("wb", "w"):
        raise ValueError(f"expected mode 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = "utf-8" if mode == "w" else None
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; what we write is meant to be read by others too.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
