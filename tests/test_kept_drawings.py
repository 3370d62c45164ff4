"""Training on the drawings users kept: the split by what each shows never moves a drawing as the store
grows, nor between stores, the
held-out part is never trained on, the training part is repeated and augmented like MNIST, bad input is
refused in one sentence, and a tiny run from a store records what it trained on and how it reads the
held-out drawings, beside the model it replaced."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from saved import save_constant_model

from digitdraw.cli import main
from digitdraw.drawings import kept_drawings, store
from digitdraw.drawings.store import NewDrawing, Store
from digitdraw.learning import config, evaluate, kept_split, train
from digitdraw.learning.kept_split import KeptDrawings, is_held_out, split
from digitdraw.serving import saved_models

# Which of ``drawing(0)``, ``drawing(1)``, ... the split rule holds out, up to the tenth, pinned: a change
# here moves users' drawings between parts.
FIRST_HELD_OUT = [6, 7, 9, 13, 17, 29, 30, 31, 33, 46]


def mnist_drawings(mnist, count: int, start: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """``count`` MNIST training digits through the app's preprocessing (from ``start``: none of them in
    ``tiny_dataset``), as the Draw page would keep them."""
    (x_train, y_train), _ = mnist
    return train.prepare_images(x_train[start : start + count]), y_train[start : start + count]


def keep(url: str, images: np.ndarray, labels: np.ndarray, session_id: str = "browser-a") -> list[int]:
    """Keep drawings through the store's own API; their ids."""
    kept = Store(url)
    try:
        return kept.save_many(
            NewDrawing(
                label=int(label), model_input=image, probabilities={}, model_sha256={}, session_id=session_id
            )
            for image, label in zip(images, labels, strict=True)
        )
    finally:
        kept.close()


def drawing(index: int) -> np.ndarray:
    """A drawing that depends on its index alone (distinct for indices below 784 * 254)."""
    image = np.zeros((28, 28), np.float32)
    image[index % 784 // 28, index % 28] = 1.0
    image[27, 27] = (index // 784 + 1) / 255
    return image


def arrays(count: int, first_id: int = 1) -> KeptDrawings:
    """``count`` distinct drawings, ``drawing(0)`` to ``drawing(count - 1)``, with consecutive ids."""
    images = (
        np.stack([drawing(index) for index in range(count)]) if count else np.zeros((0, 28, 28), np.float32)
    )
    return KeptDrawings(
        ids=np.arange(first_id, first_id + count),
        images=images,
        labels=np.arange(count) % 10,
        source="test",
    )


def held_out_count(drawings: KeptDrawings) -> int:
    """How many of these drawings the split rule holds out."""
    return sum(is_held_out(digest) for digest in drawings.digests)


def test_the_split_rule_is_pinned_and_holds_out_about_a_fifth():
    blank = np.zeros((28, 28), np.float32)
    assert store.input_digest(blank) == hashlib.sha256(bytes(784)).hexdigest()
    assert not is_held_out(store.input_digest(blank))
    assert [i for i in range(47) if is_held_out(store.input_digest(drawing(i)))] == FIRST_HELD_OUT
    assert 0.19 < held_out_count(arrays(10_000)) / 10_000 < 0.21
    assert kept_split.HELD_OUT_SHARE == 0.2


def test_a_drawing_s_part_is_what_it_shows_in_any_store_export_or_copy(tmp_path, mnist):
    images, labels = mnist_drawings(mnist, 60)
    first, second = f"sqlite:///{tmp_path / 'first.sqlite'}", f"sqlite:///{tmp_path / 'second.sqlite'}"
    keep(first, images, labels)
    keep(second, images[::-1][:30], labels[::-1][:30])  # Other ids, another order, half of them.
    keep(second, images[:30], labels[:30])  # The other half, and the store's own duplicate of none.
    keep(second, images[:5], labels[:5], session_id="browser-b")  # The same five drawings kept twice.
    parts = {url: split(kept_drawings.read(url)) for url in (first, second)}
    for part in ("training", "held_out"):
        shown = [{image.tobytes() for image in getattr(parts[url], part).images} for url in (first, second)]
        assert shown[0] == shown[1]
    held_out = {image.tobytes() for image in parts[second].held_out.images}
    assert not any(image.tobytes() in held_out for image in parts[second].training.images)
    assert len(parts[second].held_out) + len(parts[second].training) == 65


def test_no_drawing_moves_between_parts_as_the_store_grows(database_url, mnist):
    images, labels = mnist_drawings(mnist, 120)
    keep(database_url, images[:60], labels[:60])
    before = split(kept_drawings.read(database_url))
    keep(database_url, images[60:], labels[60:], session_id="browser-b")
    after = split(kept_drawings.read(database_url))
    assert before.kept == 60 and after.kept == 120
    assert set(before.held_out.ids) <= set(after.held_out.ids)
    assert set(before.training.ids) <= set(after.training.ids)
    assert not set(after.held_out.ids) & set(after.training.ids)
    # The held-out drawings are the store's exact model inputs.
    by_id = dict(zip(after.held_out.ids.tolist(), after.held_out.images, strict=True))
    for drawing_id, image in zip(before.held_out.ids.tolist(), before.held_out.images, strict=True):
        assert np.array_equal(by_id[drawing_id], image)


def test_the_held_out_part_is_never_in_the_training_arrays():
    parts = split(arrays(200), repeats=3)
    images, _ = parts.training_arrays()
    rows = {image.tobytes() for image in images}
    assert not any(image.tobytes() in rows for image in parts.held_out.images)
    assert len(parts.held_out) == held_out_count(arrays(200)) == 30


@pytest.mark.parametrize("repeats", [1, 4, 100])
def test_each_training_drawing_appears_repeats_times_with_its_label(repeats):
    parts = split(arrays(80), repeats=repeats)
    images, labels = parts.training_arrays()
    assert len(images) == len(labels) == repeats * len(parts.training)
    for image, label in zip(parts.training.images, parts.training.labels, strict=True):
        same = np.all(images == image, axis=(1, 2))
        assert same.sum() == repeats and set(labels[same].tolist()) == {label}


@pytest.mark.parametrize("repeats", [0, 101, -1, 2.5, True, "3", None])
def test_a_repeat_factor_out_of_range_is_refused(repeats):
    with pytest.raises(ValueError, match="repeats must be a whole number from 1 to 100"):
        kept_split.check_repeats(repeats)


def test_too_few_drawings_to_split_is_refused_saying_how_many_are_needed():
    with pytest.raises(ValueError, match="too few kept drawings to split: 20 in test") as refusal:
        split(arrays(20))
    held = held_out_count(arrays(20))
    message = str(refusal.value)
    assert f"{20 - held} for training and {held} held out" in message
    # Five of these twenty are held out (FIRST_HELD_OUT): five more at a fifth of new drawings is 25 more.
    assert held == 5 and message.endswith("each part needs at least 10: keep about 25 more")
    with pytest.raises(ValueError, match="0 for training and 0 held out"):
        split(arrays(0))


@pytest.mark.parametrize(
    ("training", "held_out", "more"),
    [
        (0, 0, 50),  # Ten held out, at a fifth of the new drawings.
        (10, 2, 40),
        (12, 3, 35),
        (48, 9, 5),
        (5, 10, 7),  # Five more to learn from, at four fifths of the new drawings: 6.25, so 7.
        (10, 10, 0),
    ],
)
def test_the_drawings_still_needed_are_counted_for_the_part_that_lacks_most(training, held_out, more):
    sizes = kept_split.PartSizes(training=training, held_out=held_out)
    assert sizes.more_needed == more
    assert sizes.enough == (more == 0)
    if more:
        assert sizes.shortfall().endswith(f"each part needs at least 10: keep about {more} more")


@pytest.mark.parametrize("count", [0, 12, 46, 47, 60, 200])
def test_the_part_sizes_from_digests_alone_are_the_split_s_and_say_when_it_would_refuse(count):
    drawings = arrays(count)
    sizes = kept_split.part_sizes(drawings.digests)
    assert sizes.kept == count
    if sizes.enough:
        parts = split(drawings)
        assert (sizes.training, sizes.held_out) == (len(parts.training), len(parts.held_out))
    else:
        with pytest.raises(ValueError, match=f"{sizes.training} for training and {sizes.held_out} held out"):
            split(drawings)
    assert sizes.enough == (count >= 47), "the first 47 drawings hold exactly 10 out (FIRST_HELD_OUT)"


def test_the_store_lists_every_kept_drawing_s_digest_oldest_first(tmp_path, mnist):
    url = f"sqlite:///{tmp_path / 'kept.sqlite'}"
    images, labels = mnist_drawings(mnist, 5)
    ids = keep(url, images, labels)
    digests = [store.input_digest(image) for image in images]
    kept = Store(url)
    try:
        assert kept.digests() == digests == kept_drawings.read(url).digests
        kept.delete(ids[1], "browser-a")
        assert kept.digests() == [digests[0], *digests[2:]]
    finally:
        kept.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"images": np.zeros((3, 28, 27), np.float32)},
            "N x 28 x 28 model inputs, got shape \\(3, 28, 27\\)",
        ),
        ({"images": np.zeros((3, 784), np.float32)}, "got shape \\(3, 784\\)"),
        ({"images": np.zeros((3, 28, 28), np.float64)}, "float32 model inputs"),
        ({"images": np.zeros((3, 28, 28), np.uint8)}, "float32 model inputs"),
        ({"images": np.full((3, 28, 28), 1.5, np.float32)}, "finite values in \\[0, 1\\]"),
        ({"images": np.full((3, 28, 28), np.nan, np.float32)}, "finite values in \\[0, 1\\]"),
        ({"labels": np.array([0, 1])}, "labels must be 3 whole numbers"),
        ({"labels": np.array([0.0, 1.0, 2.0])}, "labels must be 3 whole numbers"),
        ({"labels": np.array([0, 1, 10])}, "digits 0-9"),
        ({"ids": np.array(["a", "b", "c"])}, "ids must be 3 whole numbers"),
    ],
)
def test_drawings_of_the_wrong_shape_or_type_are_refused(changes, message):
    fields = {"ids": np.arange(3), "images": np.zeros((3, 28, 28), np.float32), "labels": np.arange(3)}
    with pytest.raises(ValueError, match=message):
        KeptDrawings(**{**fields, **changes}, source="test")


def test_an_export_splits_exactly_as_its_store_and_a_bad_file_is_refused(drawings_store, mnist, tmp_path):
    images, labels = mnist_drawings(mnist, 60)
    keep(drawings_store, images, labels)
    assert main(["drawings", "--database", drawings_store, "export", str(tmp_path / "kept.npz")]) == 0
    from_file = split(kept_drawings.read(str(tmp_path / "kept.npz")))
    from_store = split(kept_drawings.read(None))  # The default store: $DIGITDRAW_DATABASE_URL.
    assert from_store.training.source == drawings_store
    for part in ("training", "held_out"):
        a, b = getattr(from_file, part), getattr(from_store, part)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.labels, b.labels)
        assert np.abs(a.images - b.images).max() <= 0.5 / 255 + 1e-7  # Exported as uint8.

    # Any MNIST-style file splits alike: its drawings, not their ids, choose the part.
    x, y = store.quantised(images), labels.astype(np.uint8)
    np.savez(tmp_path / "no-ids.npz", x=x, y=y)
    without_ids = split(kept_drawings.read(str(tmp_path / "no-ids.npz")))
    for part in ("training", "held_out"):
        assert np.array_equal(getattr(without_ids, part).images, getattr(from_file, part).images)
    np.savez(tmp_path / "floats.npz", x=np.zeros((60, 28, 28)), y=np.zeros(60, np.int64), id=np.arange(60))
    with pytest.raises(ValueError, match=r"must be uint8 N x 28 x 28 .* got float64 of shape"):
        kept_drawings.read(str(tmp_path / "floats.npz"))
    with pytest.raises(ValueError, match="expected a database URL"):
        kept_drawings.read("kept.csv")
    with pytest.raises(ValueError, match="does not exist"):
        kept_drawings.read(str(tmp_path / "nowhere.sqlite"))


def test_a_recorded_store_url_hides_its_password():
    from digitdraw.drawings.store import safe_url

    assert safe_url("postgresql://ann:secret@db/digitdraw") == "postgresql://ann:***@db/digitdraw"


# One quick epoch on ``tiny_dataset`` (tests/conftest.py).
ONE_EPOCH = config.TrainConfig(epochs=1, validation_size=300, drawn_eval_size=40, batch_size=64)


def test_a_tiny_run_from_a_store_trains_on_its_part_and_records_the_held_out_figures(
    tiny_dataset, drawings_store, mnist, tmp_path, monkeypatch
):
    images, labels = mnist_drawings(mnist, 60)
    keep(drawings_store, images, labels)
    parts = split(kept_drawings.read(drawings_store), repeats=3)
    before = save_constant_model(2, 3, tmp_path)  # The model the run replaces: it reads every drawing as 3.

    seen = []
    real_augment = train.augment

    def watched_augment(batch, rng, config):
        seen.append(batch.copy())
        return real_augment(batch, rng, config)

    monkeypatch.setattr(train, "augment", watched_augment)
    trained = train.train_model(2, replace(tiny_dataset, kept=parts), ONE_EPOCH, out_dir=tmp_path)

    # What the epoch trained on: every MNIST training image once, each training drawing three times, every
    # copy through the augmentation, and no held-out drawing at all.
    (epoch_images,) = seen
    assert len(epoch_images) == len(tiny_dataset.x_train) + 3 * len(parts.training)
    assert np.array_equal(epoch_images[: len(tiny_dataset.x_train)], tiny_dataset.x_train)
    rows = {image.tobytes(): 0 for image in (*parts.training.images, *parts.held_out.images)}
    for image in epoch_images:
        if image.tobytes() in rows:
            rows[image.tobytes()] += 1
    assert all(rows[image.tobytes()] == 3 for image in parts.training.images)
    assert all(rows[image.tobytes()] == 0 for image in parts.held_out.images)

    record = saved_models.load(2, tmp_path).metrics.kept_drawings
    assert record == trained.metrics.kept_drawings
    assert (record.kept, record.trained, record.held_out) == (60, len(parts.training), len(parts.held_out))
    assert record.held_out == len(parts.held_out) >= kept_split.MIN_PER_PART
    assert record.repeats == 3 and record.held_out_share == 0.2 and record.source == drawings_store
    assert record.split_rule == kept_split.SPLIT_RULE
    assert record.accuracy == pytest.approx(
        evaluate.score(trained.network, parts.held_out.images, parts.held_out.labels)["accuracy"]
    )
    assert record.accuracy_before == pytest.approx(np.mean(parts.held_out.labels == 3))
    assert record.model_before_sha256 == before.card.model_sha256 != trained.card.model_sha256
    raw = json.loads((saved_models.model_dir(2, tmp_path) / saved_models.METRICS_FILE).read_text())
    assert raw["kept_drawings"]["held_out"] == record.held_out
    assert "held-out kept drawings" in train.summary_line(trained)

    # MNIST's own figures are still MNIST's: the training split is scored on its 1,200 images alone.
    plain = train.train_model(2, tiny_dataset, ONE_EPOCH, out_dir=tmp_path / "plain")
    assert plain.metrics.kept_drawings is None
    assert trained.card.data.splits == plain.card.data.splits


def test_without_a_model_before_there_is_no_figure_before(tiny_dataset, tmp_path):
    parts = split(arrays(60), repeats=1)
    trained = train.train_model(2, replace(tiny_dataset, kept=parts), ONE_EPOCH, out_dir=tmp_path)
    record = trained.metrics.kept_drawings
    assert record.accuracy_before is None and record.model_before_sha256 is None
    assert "no model before" in train.summary_line(trained)


def test_a_record_whose_parts_do_not_add_up_is_refused():
    fields = {
        "source": "test",
        "kept": 10,
        "trained": 8,
        "held_out": 3,
        "held_out_share": 0.2,
        "split_rule": kept_split.SPLIT_RULE,
        "repeats": 1,
        "accuracy": 0.5,
    }
    with pytest.raises(ValueError, match="do not make 10 kept"):
        saved_models.KeptDrawingsRecord(**fields)


def test_the_command_line_reads_and_splits_the_drawings_before_training(
    drawings_store, mnist, monkeypatch, capsys
):
    images, labels = mnist_drawings(mnist, 60)
    keep(drawings_store, images, labels)
    calls = []
    monkeypatch.setattr(train, "train_models", lambda *args, **kwargs: calls.append(kwargs["kept"]))
    assert main(["train", "--model", "2", "--drawings", "--drawings-repeats", "4"]) == 0
    (parts,) = calls
    assert parts.kept == 60 and parts.repeats == 4 and parts.training.source == drawings_store
    assert main(["train", "--model", "2", "--drawings", drawings_store]) == 0
    assert calls[-1].repeats == kept_split.DEFAULT_REPEATS


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--drawings", "--drawings-repeats", "0"], 2, "repeats must be a whole number from 1 to 100"),
        (["--drawings-repeats", "3"], 2, "add --drawings"),
        (["--drawings"], 1, "too few kept drawings to split: 12"),
        (["--drawings", "kept.csv"], 1, "expected a database URL"),
        (["--drawings", "foo://bar"], 1, "is not a database URL SQLAlchemy can open"),
    ],
)
def test_the_command_line_refuses_bad_drawings_in_one_line_before_any_work(
    arguments, code, message, drawings_store, mnist, monkeypatch, capsys
):
    keep(drawings_store, *mnist_drawings(mnist, 12))
    monkeypatch.setattr(train, "train_models", lambda *args, **kwargs: pytest.fail("nothing may train"))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "2", *arguments])
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert message in err
    if code == 1:  # Not an argument error (those print the usage too): one line saying what is wrong.
        assert len(err.strip().splitlines()) == 1


def test_a_network_of_ones_own_refuses_too_few_drawings_too(
    drawings_store, mnist, tmp_path, monkeypatch, capsys
):
    keep(drawings_store, *mnist_drawings(mnist, 12))
    monkeypatch.setattr(train, "train_network", lambda *args, **kwargs: pytest.fail("nothing may train"))
    arguments = ["train", "--name", "mine", "--hidden", "8", "--activation", "relu", "--out", str(tmp_path)]
    arguments.append("--drawings")
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 1 and "too few kept drawings" in capsys.readouterr().err


def test_a_mistyped_sqlite_url_is_refused_and_leaves_no_empty_store_behind(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "train_models", lambda *args, **kwargs: pytest.fail("nothing may train"))
    typo = tmp_path / "drawngs.sqlite"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "2", "--drawings", f"sqlite:///{typo}"])
    assert exit_info.value.code == 1 and f"{typo} does not exist" in capsys.readouterr().err
    assert not typo.exists()
