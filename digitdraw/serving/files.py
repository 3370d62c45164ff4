"""The package's one atomic-write helper, one checksum helper, and the size an .npz declares.

Every file DigitDraw writes (data caches, saved models, screenshots) goes
through ``atomic_write``: the bytes land in a uniquely named temporary file
beside the target, are flushed to disk, and then replace the target by one
rename. A reader therefore sees the old file or the new one, never half of
one, and two writers never share a temporary name; the last rename wins.
A rename replaces whatever has the name, so the target must be a regular
file or nothing: a folder, a device or a socket is refused before anything
is written (``check_writable``).

An .npz file names the shape of each of its arrays in a small header; a
tampered file can declare terabytes in a few bytes, and ``np.load`` would
try to allocate them. ``npz_declared_bytes`` reads only the headers, so
every reader of an .npz a user hands over checks its size first.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

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


# An .npz read here holds at most this many arrays: a saved network has a few dozen, an import two.
MAX_NPZ_ARRAYS = 1_000


def npz_headers(source: str | os.PathLike | IO[bytes]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype each array of an .npz file declares, by name, from the headers alone (nothing is
    allocated for the data). ValueError for a file that is not an .npz archive of .npy arrays, or that
    holds more than ``MAX_NPZ_ARRAYS``."""
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            if len(names) > MAX_NPZ_ARRAYS:
                raise ValueError(
                    f"it holds {len(names):,} files, more than the {MAX_NPZ_ARRAYS:,} arrays allowed"
                )
            declared = {}
            for name in names:
                if not name.endswith(".npy"):
                    raise ValueError(f"{name} is not an array")
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                declared[name.removesuffix(".npy")] = (tuple(shape), dtype)
            return declared
    except (zipfile.BadZipFile, EOFError, KeyError) as error:
        raise ValueError(f"not an .npz archive of arrays ({error})") from error


def npz_declared_bytes(source: str | os.PathLike | IO[bytes]) -> dict[str, int]:
    """The bytes each array of an .npz file declares, by name, from the headers alone (``npz_headers``)."""
    return declared_bytes(npz_headers(source))


def declared_bytes(headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, int]:
    """The bytes each array declares, by name, from its header (``npz_headers``)."""
    return {
        name: int(np.prod(shape, dtype=np.int64)) * dtype.itemsize for name, (shape, dtype) in headers.items()
    }


class DeclaredTooLarge(ValueError):
    """An .npz whose headers declare more bytes of arrays than a reader allows."""

    def __init__(self, declared: int, limit: int) -> None:
        super().__init__(f"declares {declared:,} bytes of arrays, more than {limit:,}")


def load_npz_bytes(content: bytes, limit: int) -> dict[str, np.ndarray]:
    """The arrays of an .npz held in memory, by name; their declared sizes, from the headers, are checked
    against ``limit`` bytes before any is allocated (DeclaredTooLarge), and no pickle is read. ValueError,
    OSError or zipfile.BadZipFile for what is not an .npz of arrays."""
    declared = sum(npz_declared_bytes(io.BytesIO(content)).values())
    if declared > limit:
        raise DeclaredTooLarge(declared, limit)
    with np.load(io.BytesIO(content), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def check_writable(path: str | os.PathLike) -> Path:
    """``path`` if a file may be written there: nothing by that name yet, or a regular file (a link to
    one counts), with a folder or nothing above it. ValueError otherwise, before anything is written."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file, and only a file can be written there")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{path} lies under {parent}, which is a file, not a folder")
            break
    return path


def check_folder_writable(path: str | os.PathLike) -> Path:
    """``path`` if files can be written in it: a folder, or nothing yet under a folder one can write in.
    Checked by making and removing an empty folder in the nearest one that exists, since permissions,
    read-only mounts and /proc all say no only when asked. ValueError otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder")
    existing = next((folder for folder in (path, *path.parents) if folder.exists()), Path("."))
    if not existing.is_dir():
        raise ValueError(f"{path} lies under {existing}, which is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".digitdraw-probe-", dir=existing))
    except OSError as error:
        raise ValueError(f"nothing can be written in {existing} ({error.strerror})") from error
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it is removed.
    ValueError for a path ``check_writable`` refuses."""
    if mode not in ("wb", "w"):
        raise ValueError(f"expected mode 'wb' or 'w', got {mode!r}")
    path = check_writable(path)
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
