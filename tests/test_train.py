"""A tiny training run writes a complete, self-describing model; saves are atomic; runs are deterministic."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from saved import save_constant_model

from digitdraw.learning.augment import IMPROVED_AUGMENTATION
from digitdraw.learning.config import IMPROVED_RECIPE, STUDY_RECIPE, TrainConfig, recipe_name
from digitdraw.learning.drawn import redrawn_training_digits
from digitdraw.learning.train import STROKE_SEED, load_dataset, prepare_images, train_model, train_models
from digitdraw.serving import saved_models
from digitdraw.serving.files import sha256_file
from digitdraw.serving.networks import get_spec

# Training settings for the shared ``tiny_dataset`` (tests/conftest.py): two quick epochs.
TINY = TrainConfig(epochs=2, validation_size=300, drawn_eval_size=40, batch_size=64)


def test_a_tiny_run_writes_every_file(tiny_dataset, tmp_path):
    trained = train_model(4, tiny_dataset, TINY, out_dir=tmp_path)
    directory = saved_models.model_dir(4, tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == sorted(saved_models.FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder is left behind"

    # Every file carries the format version, and the raw JSON holds what the schema promises.
    raw = {
        name: json.loads((directory / name).read_text())
        for name in saved_models.FILES
        if name.endswith("json")
    }
    assert {payload["format_version"] for payload in raw.values()} == {saved_models.FORMAT_VERSION}
    assert raw["history.json"]["epoch"] == [1, 2]
    for split in ("train", "validation", "test"):
        assert (
            len(raw["history.json"][split]["accuracy"]) == 2 and len(raw["history.json"][split]["loss"]) == 2
        )

    card = raw["model.json"]
    assert card["model_sha256"] == sha256_file(directory / "model.keras")
    layers = [
        (layer["kind"], layer["units"], layer["activation"]) for layer in card["architecture"]["layers"]
    ]
    assert layers == [("dense", 64, "relu"), ("dense", 64, "relu"), ("dense", 10, "softmax")]
    assert card["parameters"] == get_spec(4).architecture.parameter_count == trained.card.parameters
    assert set(card["versions"]) >= {"tensorflow", "keras", "numpy", "python"}
    assert card["data"]["splits"] == {
        "train": {"source": "mnist-train", "start": 0, "stop": 1200},
        "validation": {"source": "mnist-train", "start": 1200, "stop": 1500},
        "test": {"source": "mnist-test", "start": 0, "stop": 300},
    }
    assert card["data"]["drawn_size"] == 40 and card["config"]["epochs"] == 2

    metrics = raw["metrics.json"]
    assert set(metrics["accuracy"]) == {"train", "validation", "test", "drawn"}
    assert np.array(metrics["confusion_matrix"]).sum() == len(tiny_dataset.y_test)

    loaded = saved_models.load(4, tmp_path)
    assert loaded.metrics.accuracy["test"] == metrics["accuracy"]["test"] == trained.metrics.accuracy["test"]


def test_the_same_seed_gives_the_same_model(tiny_dataset, tmp_path):
    first = train_model(2, tiny_dataset, TINY, out_dir=tmp_path / "a")
    second = train_model(2, tiny_dataset, TINY, out_dir=tmp_path / "b")
    assert first.metrics.accuracy == second.metrics.accuracy
    for a, b in zip(
        first.network.weights + first.network.biases, second.network.weights + second.network.biases
    ):
        assert np.array_equal(a, b)


def _model_files(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_a_save_interrupted_half_way_leaves_the_earlier_model_intact(tmp_path):
    directory = saved_models.model_dir(1, tmp_path)
    earlier = save_constant_model(1, 3, tmp_path)
    before = _model_files(directory)

    class HalfWrittenModel:
        def save(self, path):
            with open(path, "wb") as handle:
                handle.write(b"PK\x03\x04 half a zip")
            raise KeyboardInterrupt  # What Ctrl-C does in the middle of a write.

    with pytest.raises(KeyboardInterrupt):
        saved_models.save(directory, HalfWrittenModel(), earlier.card, earlier.history, earlier.metrics)
    assert _model_files(directory) == before
    assert [p.name for p in tmp_path.iterdir()] == [directory.name]


def test_a_save_cut_between_its_two_renames_is_recovered(tmp_path):
    directory = saved_models.model_dir(1, tmp_path)
    save_constant_model(1, 3, tmp_path)
    before = _model_files(directory)
    # The state right after the first of a save's two renames.
    directory.rename(directory.with_name(directory.name + ".previous"))
    saved_models.recover(directory)
    assert _model_files(directory) == before


def test_bad_training_settings_are_value_errors():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="train_limit"):
        TrainConfig(train_limit=0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--model", "9"], "one of [1, 2, 3, 4, 5, 6]"),
        (["train", "--model", "two"], "one of [1, 2, 3, 4, 5, 6]"),
        (["train", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "--limit", "-5"], "train_limit"),
        (["train", "--strokes", "2"], "stroke_share must be from 0 to 1"),
        (["train", "--thickness", "0"], "thickness_pixels must be at least 1"),
        (["train", "--elastic", "-1"], "elastic_probability must be from 0 to 1"),
        (["train", "--recipe", "best"], "invalid choice"),
        ([], "required"),
    ],
)
def test_the_command_line_rejects_bad_arguments_before_any_work(arguments, message, capsys):
    from digitdraw.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_redrawn_training_digits_are_preprocessed_strokes_fixed_by_the_seed(small_splits):
    (x_train, _), _ = small_splits
    digits = x_train[:12].copy()
    digits[5] = 0  # No ink to redraw: preprocessed as it is, which is blank.
    first = redrawn_training_digits(digits, seed=3)
    assert first.shape == (12, 28, 28) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, redrawn_training_digits(digits, seed=3))
    assert not np.array_equal(first, redrawn_training_digits(digits, seed=4))
    assert not first[5].any() and all(first[index].sum() > 10 for index in range(12) if index != 5)
    # The same digit, redrawn: closer to its own preprocessed original than to the other digits'.
    prepared = prepare_images(x_train[:12])
    for index in (0, 1, 2, 3):
        distances = np.abs(prepared - first[index]).sum(axis=(1, 2))
        assert distances[index] < np.median(distances)


def test_a_run_with_strokes_redraws_its_own_training_digits_only(small_splits, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITDRAW_CACHE", str(tmp_path))
    config = TrainConfig(validation_size=300, drawn_eval_size=10, train_limit=30, stroke_share=0.5)
    dataset = load_dataset(config, small_splits)
    (x_train, _), _ = small_splits
    assert np.array_equal(dataset.x_strokes, redrawn_training_digits(x_train[:30], STROKE_SEED))
    assert dataset.limited(10).x_strokes.shape == (10, 28, 28)
    # Only the drawn test digits, the same for any run, are cached: a quick run prepares no training digits.
    assert [path.name.split("-")[0] for path in tmp_path.iterdir()] == ["drawn"], (
        "a quick run leaves the cache alone"
    )
    assert load_dataset(replace(config, stroke_share=0.0), small_splits).x_strokes is None


def test_a_stroke_share_of_one_trains_on_the_strokes_alone(tiny_dataset, tmp_path):
    strokes = 1.0 - tiny_dataset.x_train  # Any other images will do: the point is which ones are used.
    with_strokes = replace(tiny_dataset, x_strokes=strokes)
    only_strokes = replace(TINY, epochs=1, augmentation=None, stroke_share=1.0)
    plain = replace(TINY, epochs=1, augmentation=None)
    mixed = train_model(2, with_strokes, only_strokes, out_dir=tmp_path / "a")
    direct = train_model(2, replace(tiny_dataset, x_train=strokes), plain, out_dir=tmp_path / "b")
    for a, b in zip(mixed.network.weights, direct.network.weights):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="without them"):
        train_model(2, tiny_dataset, only_strokes, out_dir=tmp_path / "c")


def test_each_model_card_names_its_recipe():
    assert recipe_name(STUDY_RECIPE) == "study" and recipe_name(IMPROVED_RECIPE) == "improved"
    assert recipe_name(replace(IMPROVED_RECIPE, epochs=3, seed=9, train_limit=100)) == "improved"
    assert recipe_name(replace(STUDY_RECIPE, stroke_share=0.25)) == "custom"
    assert recipe_name(TINY) == "study"
    with pytest.raises(ValueError, match="stroke_share"):
        TrainConfig(stroke_share=1.5)


def test_the_baseline_recipe_is_trained_beside_and_kept_in_the_metrics(small_splits, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITDRAW_CACHE", str(tmp_path / "cache"))
    improved = replace(TINY, augmentation=IMPROVED_AUGMENTATION)
    (trained,) = train_models([2], improved, out_dir=tmp_path / "models", splits=small_splits, baseline=TINY)
    assert (
        trained.card.config["recipe"] == "improved"
        and trained.card.config["augmentation"]["thickness_pixels"] == 2
    )
    baseline = saved_models.load(2, tmp_path / "models").metrics.baseline
    assert baseline.recipe == "study" and baseline.epochs_run == 2
    # The very figures of the study's recipe trained alone from the same seed.
    alone = train_model(2, load_dataset(TINY, small_splits), TINY, out_dir=tmp_path / "alone")
    assert baseline.accuracy == alone.metrics.accuracy
    assert saved_models.model_dir(2, tmp_path / "models").exists()
    assert not (tmp_path / "models" / "model_2_baseline").exists()


def test_the_app_reads_mnist_test_inputs_from_the_cache_training_leaves(small_splits, tmp_path, monkeypatch):
    from digitdraw.learning.train import cached_test_inputs

    monkeypatch.setenv("DIGITDRAW_CACHE", str(tmp_path))
    assert cached_test_inputs(small_splits) is None, "no cache yet"
    dataset = load_dataset(TrainConfig(validation_size=300, drawn_eval_size=10), small_splits)  # A whole run.
    np.testing.assert_array_equal(cached_test_inputs(small_splits), dataset.x_test)
