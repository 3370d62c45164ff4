"""Hostile and clumsy input, one test per cause (issue 28): every command says what is wrong in one line and
exits 1 (2 for a bad request) with no traceback; files are written only over regular files; sizes are
checked from headers before anything is allocated; one bad model or job disables itself alone."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from drawings import draw_digit
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image
from queued import insert_queued

import digitdraw
from digitdraw.cli import main
from digitdraw.drawings import collect
from digitdraw.jobs import queue as jobs
from digitdraw.serving import files, saved_models
from digitdraw.serving.files import sha256_file
from digitdraw.serving.saved_models import model_dir


def _run(arguments: list[str], capsys) -> tuple[int, str, str]:
    """Run a command as a person would; the exit status and what it printed."""
    try:
        code = main(arguments)
    except SystemExit as done:  # argparse's bad request.
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err and err.startswith("python -m digitdraw")


@pytest.fixture
def database(tmp_path):
    return f"sqlite:///{tmp_path / 'kept.sqlite'}"


def test_blank_mnist_style_drawings_are_refused_and_nothing_is_kept(database, tmp_path, capsys):
    np.savez(tmp_path / "blank.npz", x=np.zeros((3, 28, 28), np.uint8), y=np.array([1, 2, 3]))
    code, _, err = _run(["drawings", "--database", database, "import", str(tmp_path / "blank.npz")], capsys)
    assert code == 1 and _one_line(err) and "drawing 0 of x is blank" in err
    assert _run(["drawings", "--database", database, "stats"], capsys)[1].strip() == "no drawings kept yet"


def test_an_npy_file_named_npz_is_one_sentence(database, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    code, _, err = _run(["drawings", "--database", database, "import", str(tmp_path / "x.npz")], capsys)
    assert code == 1 and _one_line(err) and "is not a readable .npz file (not an .npz archive" in err


def test_a_declared_size_beyond_the_limit_is_refused_from_the_header_before_allocating(
    database, tmp_path, capsys
):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (5000, 1000, 1000)}
    )
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())  # 5 GB declared, none of it there.
        archive.writestr("y.npy", header.getvalue())
    code, _, err = _run(["drawings", "--database", database, "import", str(tmp_path / "huge.npz")], capsys)
    assert code == 1 and _one_line(err) and "at most 100,000 drawings and 256 MiB" in err
    tracemalloc.start()
    with pytest.raises(ValueError, match="declares 9,537 MiB of arrays"):
        collect.read_npz(tmp_path / "huge.npz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # Refused from the header: not one of the 5 GB declared was allocated.


def test_too_many_drawings_or_arrays_are_refused_from_the_headers(database, tmp_path, capsys):
    """318,000 blank drawings zip to 245 KB: their count is in the header, and refused there."""
    many = tmp_path / "many.npz"
    np.savez_compressed(many, x=np.zeros((120_000, 1, 1), np.uint8), y=np.zeros(120_000, np.uint8))
    tracemalloc.start()
    with pytest.raises(ValueError, match="holds 120,000 drawings; one import takes at most 100,000"):
        collect.read_npz(many)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # Not one drawing was read.
    members = tmp_path / "members.npz"
    np.savez(members, x=np.zeros((1, 28, 28), np.uint8), y=np.zeros(1, np.uint8),
             **{f"extra{i}": np.zeros(1, np.uint8) for i in range(files.MAX_NPZ_ARRAYS)})  # fmt: skip
    code, _, err = _run(["drawings", "--database", database, "import", str(members)], capsys)
    assert code == 1 and _one_line(err) and "holds 1,002 files, more than the 1,000 arrays" in err


def test_a_database_whose_driver_is_not_installed_is_one_sentence(capsys):
    code, _, err = _run(["drawings", "--database", "mysql://u@127.0.0.1/x", "stats"], capsys)
    assert code == 1 and _one_line(err) and "needs a database driver that is not installed" in err


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_an_export_to_a_path_that_is_not_a_file_is_one_sentence_and_writes_nothing(
    where, database, tmp_path, capsys
):
    here = tmp_path / "here"
    (here / "folder").mkdir(parents=True)
    (here / "file").write_text("not a folder")
    target = here / ("folder" if where == "a folder" else "file/kept.npz")
    code, _, err = _run(["drawings", "--database", database, "export", str(target)], capsys)
    assert code == 1 and _one_line(err)
    assert sorted(p.name for p in here.rglob("*")) == ["file", "folder"]
    assert (here / "file").read_text() == "not a folder"


def test_an_export_never_replaces_something_that_is_not_a_regular_file(database, tmp_path, capsys):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # Like /dev/full, not a regular file: a rename would have replaced it.
    code, _, err = _run(["drawings", "--database", database, "export", str(pipe)], capsys)
    assert code == 1 and _one_line(err) and "is not a regular file" in err
    assert pipe.is_fifo()
    with pytest.raises(ValueError, match="not a regular file"):
        files.check_writable(pipe)


@pytest.mark.parametrize("out", ["a file", "under a file"])
def test_train_refuses_an_output_folder_it_cannot_write_before_any_work(out, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    target = tmp_path / ("file" if out == "a file" else "file/models")
    for arguments in (["--model", "2"], ["--name", "racer", "--hidden", "8", "--activation", "relu"]):
        code, _, err = _run(["train", *arguments, "--epochs", "1", "--out", str(target)], capsys)
        assert code == 2 and "Traceback" not in err and str(tmp_path / "file") in err
    assert (tmp_path / "file").read_text() == "x"


def test_options_for_a_network_of_one_s_own_are_refused_for_the_study_s_networks(capsys):
    arguments = ["train", "--model", "2", "--lr", "-5", "--batch", "0", "--optimizer", "foo", "--no-augment"]
    code, _, err = _run(arguments, capsys)
    assert code == 2 and "--optimizer, --lr, --batch, --no-augment apply to a network of your own" in err


def test_options_for_the_study_s_networks_are_refused_for_a_network_of_one_s_own(tmp_path, capsys):
    arguments = ["train", "--name", "n", "--hidden", "8", "--activation", "relu", "--recipe", "study"]
    code, _, err = _run([*arguments, "--drawn", "5", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--recipe, --drawn apply to the study's networks" in err


def test_a_negative_drawn_set_is_a_bad_request(capsys):
    code, _, err = _run(["train", "--model", "2", "--drawn", "-5"], capsys)
    assert code == 2 and "drawn evaluation set must hold 1 to 10,000 digits" in err


def test_a_network_saved_meanwhile_under_the_same_name_is_kept_without_force(tmp_path):
    from saved import save_constant_model

    first = save_constant_model("racer", 3, tmp_path)
    keras_model = __import__("keras").saving.load_model(first.directory / saved_models.MODEL_FILE)
    second = first.card.model_copy(update={"seed": 1})
    with pytest.raises(saved_models.SavedModelError, match=r"saved in .* meanwhile; it is kept"):
        saved_models.save(first.directory, keras_model, second, first.history, first.metrics, overwrite=False)
    assert saved_models.load("racer", tmp_path).card.seed == 0
    assert not [p for p in first.directory.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "settings",
    [{"name": "../evil"}, {"hidden": [100_000]}, {"surprise": 1}],
    ids=["a name that is a path", "a layer too wide", "an unknown key"],
)
def test_a_job_that_cannot_run_fails_with_its_reason_and_the_next_one_runs(settings, tmp_path):
    queue = jobs.JobQueue(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    good = {"name": "fine", "hidden": [8], "activation": "relu"}
    for record in ({**good, "name": "bad", **settings}, good):
        insert_queued(queue, record["name"][:40], record)
    listed = {job.name: job for job in queue.jobs()}  # The Train page lists it without a traceback.
    assert listed[record["name"]].settings is not None
    assert next(job for job in listed.values() if job.name != "fine").settings is None
    claimed = queue.claim("host:1")
    assert claimed is not None and claimed.settings.name == "fine"
    (bad,) = [job for job in queue.jobs() if job.name != "fine"]
    assert bad.state == jobs.JobState.FAILED and bad.message.startswith("Its settings cannot be trained")
    queue.close()


def _resign_digit_score_arrays(folder) -> None:
    """Write novelty.npz's new checksum into calibration.json, as a tampered folder would."""
    path = folder / saved_models.CALIBRATION_FILE
    payload = json.loads(path.read_text())
    payload["novelty"]["statistics_sha256"] = sha256_file(folder / saved_models.NOVELTY_FILE)
    path.write_text(json.dumps(payload))


def _rewrite_digit_score_arrays(folder, change) -> None:
    """Change novelty.npz's arrays (``change`` edits the dict) and keep its checksum consistent."""
    with np.load(folder / saved_models.NOVELTY_FILE) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    np.savez(folder / saved_models.NOVELTY_FILE, **arrays)
    _resign_digit_score_arrays(folder)


def _drop_a_digit_score_array(folder) -> None:
    _rewrite_digit_score_arrays(folder, lambda arrays: arrays.pop("noise"))


def _a_scalar_where_an_array_belongs(folder) -> None:
    _rewrite_digit_score_arrays(folder, lambda arrays: arrays.update(means=np.float32(1.0)))


def _a_huge_declared_array(folder) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    with zipfile.ZipFile(folder / saved_models.NOVELTY_FILE, "a") as archive:
        archive.writestr("huge.npy", header.getvalue())  # 4 TiB declared, none of it there.
    _resign_digit_score_arrays(folder)


def _nan_weights(folder) -> None:
    import keras

    model = keras.saving.load_model(folder / saved_models.MODEL_FILE)
    weights = model.get_weights()
    weights[0][0, 0] = np.nan
    model.set_weights(weights)
    model.save(folder / saved_models.MODEL_FILE)
    path = folder / saved_models.CARD_FILE
    payload = json.loads(path.read_text())
    payload["model_sha256"] = sha256_file(folder / saved_models.MODEL_FILE)
    path.write_text(json.dumps(payload))


def _keras_file_a_folder(folder) -> None:
    (folder / saved_models.MODEL_FILE).unlink()
    (folder / saved_models.MODEL_FILE).mkdir()


def _keras_file_huge(folder) -> None:
    with open(folder / saved_models.MODEL_FILE, "r+b") as handle:  # Sparse: no disk, no memory.
        handle.truncate(saved_models.MAX_MODEL_FILE_BYTES + 1)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_drop_a_digit_score_array, "does not hold the digit score's arrays"),
        (_a_scalar_where_an_array_belongs, "does not hold the digit score's arrays"),
        (_a_huge_declared_array, "novelty.npz declares 4,398,04"),
        (_nan_weights, "weights that are not finite numbers"),
        (_keras_file_a_folder, "model.keras is not a file"),
        (_keras_file_huge, "a saved model's is at most 67,108,864"),
    ],
    ids=[
        "a digit-score array missing",
        "a scalar for an array",
        "an array of 4 TiB declared",
        "NaN weights",
        "model.keras a folder",
        "model.keras too large",
    ],
)
def test_one_damaged_model_is_unavailable_alone_and_the_others_answer(damage, message, models_copy):
    damage(model_dir(2, models_copy))
    result = digitdraw.classify(draw_digit(7), root=models_copy)
    assert sorted(result.errors) == [2] and message in result.errors[2]
    assert sorted(result.probabilities) == [1, 3, 4, 5, 6] and result.digit(4) == 7
    reading = digitdraw.read_digits(draw_digit(7), root=models_copy)
    assert sorted(reading.errors) == [2] and reading.text(4) == "7"


def test_more_weights_than_a_network_may_have_are_refused_from_the_file_s_metadata(models_copy, monkeypatch):
    monkeypatch.setattr(saved_models, "MAX_WEIGHTS", 1000)
    with pytest.raises(
        saved_models.SavedModelError, match="declares 13,002 weights; a network has at most 1,000"
    ):
        saved_models.load(2, models_copy)


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path, capsys):
    path = tmp_path / "seven\nforged: 123.png"
    Image.fromarray(255 - draw_digit(7)[:, :, 3]).save(path, format="PNG")
    code, out, _ = _run(["read", str(path), "--model", "4"], capsys)
    assert code == 0 and out.count("\n") == 1 and "seven\\nforged" in out


@pytest.mark.parametrize("image", [None, [[0, 1], [1, 0]], 3.5])
def test_read_digits_says_what_it_expects_like_classify(image):
    with pytest.raises(ValueError, match="expected an image array or an image file"):
        digitdraw.read_digits(image)
    with pytest.raises(ValueError):
        digitdraw.classify(image)


def test_the_import_limit_is_checked_before_an_npz_is_read(tmp_path, monkeypatch):
    np.savez(tmp_path / "two.npz", x=np.ones((2, 28, 28), np.uint8), y=np.array([1, 2]))
    monkeypatch.setattr(collect, "MAX_IMPORT_DRAWINGS", 1)
    with pytest.raises(ValueError, match="one import takes at most 1 drawings"):
        collect.read_npz(tmp_path / "two.npz")


# Files a clumsy or hostile user might hand the commands: random bytes, or .npz archives of arrays of any
# small shape and dtype under the names the commands read.
SHAPES = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)
DTYPES = st.sampled_from(["uint8", "int64", "float32", "float64", "bool", "complex64", "U3"])


@st.composite
def hostile_files(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    arrays = {}
    for name in draw(st.lists(st.sampled_from(["x", "y", "id", "other"]), unique=True, max_size=3)):
        shape, dtype = draw(SHAPES), draw(DTYPES)
        arrays[name] = (
            np.zeros(shape, dtype) if dtype == "U3" else np.ones(shape, dtype) * draw(st.integers(-2, 300))
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@given(
    content=hostile_files(),
    command=st.sampled_from([["drawings", "import"], ["read"], ["drawings", "export"]]),
    name=st.sampled_from(["f.npz", "f.png", "a\nb.npz", "f"]),
)
@settings(max_examples=40)
@example(content=b"\x93NUMPY", command=["drawings", "import"], name="f.npz")
@example(content=b"", command=["read"], name="a\nb.npz")
def test_any_file_given_to_a_command_is_an_answer_or_one_line(content, command, name, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    path = folder / name
    path.write_bytes(content)
    database = f"sqlite:///{folder / 'kept.sqlite'}"
    arguments = [*command[:1], "--database", database, *command[1:]] if command[0] == "drawings" else command
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*arguments, str(path)])
        except SystemExit as done:
            code = done.code
    out, err = out.getvalue(), err.getvalue()
    assert "Traceback" not in out + err
    assert code in (0, 1, 2)
    if code == 1:
        assert _one_line(err) or (command == ["read"] and err.count("\n") == 1)
    if command == ["drawings", "export"]:
        assert code == 0 and path.is_file()  # An empty store exports an empty file over the given one.


def test_an_upgrade_the_app_could_not_serve_is_refused_and_the_folder_kept(models_copy, capsys):
    folder = model_dir(1, models_copy)
    # A calibration without the learned score loads, but the app could not serve it.
    _rewrite_digit_score_arrays(
        folder, lambda arrays: [arrays.pop(name) for name in [n for n in arrays if n.startswith("learned")]]
    )
    for name in saved_models.SCHEMAS:
        path = folder / name
        path.write_text(
            json.dumps(json.loads(path.read_text()) | {"format_version": saved_models.UPGRADABLE_VERSION})
        )
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    code, _, err = _run(["models", "upgrade", "--root", str(models_copy)], capsys)
    assert code == 1 and "model_1" in err and "refit it with `python -m digitdraw calibrate`" in err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == files
    assert not [path for path in folder.parent.iterdir() if path.name.startswith(".")]


def test_an_export_to_a_name_with_a_newline_reports_on_one_line(database, tmp_path, capsys):
    code, out, _ = _run(["drawings", "--database", database, "export", str(tmp_path / "a\nb.npz")], capsys)
    assert code == 0 and out.count("\n") == 1 and "a\\nb.npz" in out


def test_debug_shows_the_traceback_a_command_would_turn_into_one_line(tmp_path, capsys):
    (tmp_path / "note.txt").write_text("not an image")
    assert _run(["read", str(tmp_path / "note.txt")], capsys)[0] == 1
    with pytest.raises(ValueError):
        main(["--debug", "read", str(tmp_path / "note.txt")])


def test_ctrl_c_ends_a_command_with_status_130_and_one_line(database, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(collect, "import_arrays", interrupted)
    np.savez(database.removeprefix("sqlite:///") + ".npz", x=np.ones((1, 28, 28), np.uint8), y=np.array([1]))
    code, _, err = _run(
        ["drawings", "--database", database, "import", database.removeprefix("sqlite:///") + ".npz"], capsys
    )
    assert code == 130 and err.strip() == "python -m digitdraw drawings import: interrupted"


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        # A label of 300 digits is refused in a short sentence, not printed whole.
        (np.full((2, 28, 28), 255, np.uint8), np.array([1.0, 1e300]), "found 1 to 1e+300"),
        (
            np.full((2, 28, 28), 0.5, np.float32) + np.array([0, np.nan])[:, None, None],
            [1, 2],
            "drawing 1 of x",
        ),
        (np.full((2, 40, 40), 300, np.int64), [1, 2], "drawing 0 of x has values outside 0-255"),
    ],
    ids=["a huge label", "a NaN image", "an int64 canvas out of range"],
)
def test_an_import_s_refusal_names_the_drawing_and_stays_short(x, y, message, database, tmp_path, capsys):
    path = tmp_path / "drawings.npz"
    np.savez(path, x=x, y=np.asarray(y))
    code, _, err = _run(["drawings", "--database", database, "import", str(path)], capsys)
    assert code == 1 and _one_line(err) and message in err and len(err) < 300


def test_whole_numbers_of_any_width_import_alike_for_28x28_images_and_canvases(database, tmp_path, capsys):
    canvases = draw_digit(7)[None, :, :, 3].astype(np.int64)  # A canvas's ink, as int64.
    path = tmp_path / "drawings.npz"
    np.savez(path, x=canvases, y=np.array([7]))
    code, _, err = _run(["drawings", "--database", database, "import", str(path)], capsys)
    assert code == 0 and not err, err
