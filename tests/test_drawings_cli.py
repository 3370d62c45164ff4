"""``python -m digitdraw drawings``: import keeps a good file whole and a bad one not at all, export gives
back exactly what was kept, stats counts and scores."""

from __future__ import annotations

import numpy as np
import pytest
from drawings import blank_canvas, draw_digit

from digitdraw.cli import main
from digitdraw.drawings import store


@pytest.fixture
def database(tmp_path):
    return f"sqlite:///{tmp_path / 'kept.sqlite'}"


def run(database: str, *arguments: str, capsys) -> tuple[int, str, str]:
    code = main(["drawings", "--database", database, *arguments])
    out, err = capsys.readouterr()
    return code, out, err


def write_npz(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_mnist_images_import_whole_and_export_byte_for_byte(mnist, database, tmp_path, capsys):
    _, (x_test, y_test) = mnist
    source = write_npz(tmp_path / "mnist.npz", x=x_test[:25], y=y_test[:25])
    code, out, err = run(database, "import", source, capsys=capsys)
    assert code == 0 and "kept 25 drawings" in out and not err
    code, out, _ = run(database, "export", str(tmp_path / "back.npz"), capsys=capsys)
    assert code == 0 and "wrote 25 drawings" in out
    with np.load(tmp_path / "back.npz") as back:
        assert back["x"].dtype == np.uint8 and np.array_equal(back["x"], x_test[:25])
        assert np.array_equal(back["y"], y_test[:25])
        # Each drawing's id in the store too, so that a row of the file can be traced back to its drawing.
        assert back["id"].tolist() == [drawing.id for drawing in store.Store(database).drawings()]
    code, out, _ = run(database, "stats", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[-1] == "25"  # The total of the counts per digit.
    model_4 = next(line for line in lines if line.startswith("4 "))
    right, total = map(int, model_4.split()[1:3])
    assert total == 25 and right >= 23  # Model 4 reads MNIST test digits at 98.65%.


def test_rgba_canvases_go_through_the_draw_page_s_preprocessing(database, tmp_path, capsys):
    canvases = np.stack([draw_digit(digit) for digit in (0, 1, 7)])
    source = write_npz(tmp_path / "canvases.npz", x=canvases, y=np.array([0, 1, 7]))
    assert run(database, "import", source, "--session", "class-3b", capsys=capsys)[0] == 0
    kept = store.Store(database).drawings("class-3b")
    assert [d.label for d in kept] == [0, 1, 7]
    assert [d.digit(4) for d in kept] == [0, 1, 7]
    assert all(d.model_input.shape == (28, 28) and d.model_input.max() <= 1 for d in kept)


def _truncated(tmp_path) -> str:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((3, 28, 28), np.uint8), y=np.arange(3))
    content = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(content[: len(content) // 2])
    return str(tmp_path / "truncated.npz")


def _text_file(path) -> str:
    path.write_text("hello")
    return str(path)


BAD_FILES = {
    "truncated": (_truncated, "not a readable .npz"),
    "not an npz": (lambda p: _text_file(p / "x.npz"), "not a readable .npz"),
    "missing": (lambda p: str(p / "nowhere.npz"), "does not exist"),
    "no y": (lambda p: write_npz(p / "a.npz", x=np.zeros((2, 28, 28))), "no array named y"),
    "labels above 9": (
        lambda p: write_npz(p / "a.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.array([3, 10])),
        "digits 0-9",
    ),
    "negative label": (
        lambda p: write_npz(p / "a.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.array([-1, 2])),
        "digits 0-9",
    ),
    "fractional label": (
        lambda p: write_npz(p / "a.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.array([1.5, 2.0])),
        "whole numbers",
    ),
    "lengths differ": (
        lambda p: write_npz(p / "a.npz", x=np.zeros((3, 28, 28), np.uint8), y=np.array([1, 2])),
        "one label per image",
    ),
    "wrong shape": (
        lambda p: write_npz(p / "a.npz", x=np.zeros((2, 28 * 28), np.uint8), y=np.array([1, 2])),
        "N x H x W",
    ),
    "empty": (lambda p: write_npz(p / "a.npz", x=np.zeros((0, 28, 28)), y=np.zeros(0)), "N x H x W"),
    "floats above 1": (
        lambda p: write_npz(p / "a.npz", x=np.full((2, 28, 28), 3.0), y=np.array([1, 2])),
        "uint8 0-255 or floats in",
    ),
    "a blank canvas among good ones": (
        lambda p: write_npz(p / "a.npz", x=np.stack([draw_digit(1), blank_canvas()]), y=np.array([1, 2])),
        "drawing 1 of x is blank",
    ),
    "strings": (lambda p: write_npz(p / "a.npz", x=np.array([["a"]]), y=np.array([1])), "must hold numbers"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_bad_file_exits_non_zero_with_one_line_and_keeps_nothing(kind, database, tmp_path, capsys):
    make, message = BAD_FILES[kind]
    code, out, err = run(database, "import", make(tmp_path), capsys=capsys)
    assert code != 0 and not out
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert store.Store(database).count() == 0


def test_stats_on_an_empty_store(database, capsys):
    assert run(database, "stats", capsys=capsys)[1].strip() == "no drawings kept yet"


@pytest.mark.parametrize("action", ["import", "export", "stats"])
def test_every_action_explains_itself(action, capsys):
    with pytest.raises(SystemExit) as done:
        main(["drawings", action, "--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out


def test_the_export_is_written_atomically(database, tmp_path, capsys, monkeypatch):
    run(
        database,
        "import",
        write_npz(tmp_path / "a.npz", x=np.zeros((1, 28, 28), np.uint8) + 9, y=[4]),
        capsys=capsys,
    )
    target = tmp_path / "out.npz"
    target.write_bytes(b"previous")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", fail)
    assert main(["drawings", "--database", database, "export", str(target)]) == 1
    assert "disk full" in capsys.readouterr().err
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out")] == ["out.npz"]
