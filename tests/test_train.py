"""A tiny training run writes a complete, self-describing model; saves are atomic; runs are deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
from saved import save_constant_model

from digitdraw import saved_models
from digitdraw.files import sha256_file
from digitdraw.models import get_spec
from digitdraw.train import TrainConfig, train_model

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
    assert card["architecture"]["layers"] == [
        {"kind": "dense", "units": 64, "activation": "relu"},
        {"kind": "dense", "units": 64, "activation": "relu"},
        {"kind": "dense", "units": 10, "activation": "softmax"},
    ]
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
        ([], "required"),
    ],
)
def test_the_command_line_rejects_bad_arguments_before_any_work(arguments, message, capsys):
    from digitdraw.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
