"""The README promises only what the repository holds: every local link and picture exists, pictures
are small, and every `make` target it names is in the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAX_PICTURE_BYTES = 150_000


def _local_targets() -> list[str]:
    targets = re.findall(r"\]\(([^)\s]+)\)", README)  # Markdown links and images.
    targets += re.findall(r'<img[^>]+src="([^"]+)"', README)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_every_local_link_and_picture_exists():
    targets = _local_targets()
    assert targets, "the README links to files of the repository"
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing


def test_every_picture_is_a_small_png():
    pictures = [target for target in _local_targets() if target.endswith(".png")]
    assert len(pictures) >= 5
    for picture in pictures:
        content = (ROOT / picture).read_bytes()
        assert content.startswith(b"\x89PNG"), picture
        assert len(content) <= MAX_PICTURE_BYTES, f"{picture} is {len(content)} bytes"


def test_every_make_target_the_readme_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)`", README)) | set(
        re.findall(r"^make ([a-z][\w-]*)", README, re.M)
    )
    assert {"run", "test", "screenshots"} <= named
    assert named <= targets, named - targets
