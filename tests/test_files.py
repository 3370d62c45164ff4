"""The one atomic-write helper and the one checksum helper, against hashlib and under failure."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from digitdraw.serving.files import atomic_write, sha256, sha256_file


def test_sha256_agrees_with_hashlib_for_bytes_files_and_array_memory(tmp_path):
    content = bytes(range(256)) * 9000  # Larger than one read chunk.
    path = tmp_path / "blob"
    path.write_bytes(content)
    expected = hashlib.sha256(content).hexdigest()
    assert sha256(content) == sha256_file(path) == expected
    assert sha256(content[:1000], content[1000:]) == expected
    array = np.arange(6000, dtype=np.int64).reshape(20, 300)
    assert sha256(array.data) == hashlib.sha256(array.tobytes()).hexdigest()


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "deep" / "folder" / "file.txt"
    with atomic_write(path, "w") as handle:
        handle.write("first")
    with atomic_write(path, "w") as handle:
        handle.write("second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as handle:
        handle.write(b"half of the new")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write.
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "shared.bin"
    barrier = threading.Barrier(8)
    errors = []

    def write(value: int) -> None:
        try:
            with atomic_write(path) as handle:
                barrier.wait(timeout=10)  # Every writer has its temporary file open at once.
                handle.write(bytes([value]) * 100_000)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(value,)) for value in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    content = path.read_bytes()
    assert len(content) == 100_000 and len(set(content)) == 1, "one writer's bytes, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]


def test_only_binary_or_text_writing_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="expected mode"), atomic_write(tmp_path / "x", "a"):
        pass
