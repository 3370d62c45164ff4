"""Networks people design: settings checked whole, trained by the study's machinery, saved in the same
format under custom/<name>/, loaded, listed and cached like the study's, stopped cleanly, deleted; and the
command line that trains one, which refuses a bad request in one line and writes nothing."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from drawings import draw_digit
from saved import save_constant_model

import digitdraw
from digitdraw.cli import main
from digitdraw.learning.config import NetworkSettings, TrainConfig
from digitdraw.learning.train import Monitor, load_dataset, train_network
from digitdraw.serving import inference, saved_models
from digitdraw.serving.networks import saved_models_dir


def tiny(name: str = "my-net", **changes) -> NetworkSettings:
    fields = {"name": name, "hidden": (16, 16), "activation": "tanh", "epochs": 2, "batch_size": 64}
    return NetworkSettings(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden": ()}, "1 to 3 hidden layers"),
        ({"hidden": (8, 8, 8, 8)}, "1 to 3 hidden layers"),
        ({"hidden": (0,)}, "units must be a whole number from 4 to 512"),
        ({"hidden": (513,)}, "units must be a whole number from 4 to 512"),
        ({"activation": "swish"}, "activation must be one of sigmoid, relu, tanh, gelu"),
        ({"activation": "softmax"}, "activation must be one of"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of study, adam, sgd"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"learning_rate": 2.0}, "learning rate"),
        ({"epochs": 31}, "epochs must be a whole number from 1 to 30"),
        ({"train_limit": 60_000}, "training images must be a whole number from 100 to 50,000"),
        ({"batch_size": 0}, "batch size"),
        ({"name": "../evil"}, "letters, digits and dashes"),
        ({"kept_repeats": 0}, "repeats must be a whole number from 1 to 100"),
        ({"kept_repeats": True}, "repeats must be a whole number from 1 to 100"),
    ],
)
def test_bad_settings_are_value_errors_saying_what_is_expected(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(**changes)


def test_the_study_recipe_preset_is_what_the_study_did():
    settings = NetworkSettings.study_recipe("s", (64, 64), "sigmoid")
    config = TrainConfig()
    assert (settings.optimizer, settings.batch_size, settings.epochs) == (
        "study",
        config.batch_size,
        config.epochs,
    )
    assert settings.augmentation and settings.resolved_learning_rate == config.sigmoid_learning_rate
    assert (
        NetworkSettings.study_recipe("r", (16,), "relu").resolved_learning_rate == config.relu_learning_rate
    )
    assert tiny(optimizer="adam").resolved_learning_rate == 1e-3
    assert tiny(optimizer="sgd", learning_rate=0.2).resolved_learning_rate == 0.2


@pytest.mark.parametrize("optimizer", ["study", "adam", "sgd"])
def test_a_designed_network_trains_saves_and_is_served_like_the_study_ones(optimizer, tiny_dataset, tmp_path):
    root = tmp_path / "saved_models"
    shutil.copytree(saved_models_dir(), root)
    epochs_seen, batches = [], []
    monitor = Monitor(
        epoch_done=lambda history: epochs_seen.append(list(history.epoch)),
        batch_done=lambda epoch, done, total: batches.append((epoch, done, total)),
    )
    trained = train_network(tiny(optimizer=optimizer), tiny_dataset, root, monitor)

    directory = root / "custom" / "my-net"
    assert sorted(p.name for p in directory.iterdir()) == sorted(saved_models.FILES)
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")], "no staging left behind"
    assert trained.card.model_id == "my-net" and trained.spec is None
    assert trained.card.config["optimizer"] == optimizer and trained.card.config["hidden"] == [16, 16]
    assert trained.card.architecture.summary == "784-16-16-10" and trained.card.epochs_run == 2
    assert epochs_seen == [[1], [1, 2]]
    steps = -(-len(tiny_dataset.x_train) // 64)
    assert batches[0] == (1, 1, steps) and batches[-1] == (2, steps, steps) and len(batches) == 2 * steps
    assert trained.metrics.accuracy["test"] > 0.5  # 1,200 images, 2 epochs: far above chance.

    # Everywhere the study's models are: the list, the public API, classify with mixed ids.
    assert inference.available_model_ids(root) == (1, 2, 3, 4, 5, 6, "my-net")
    network = digitdraw.load_classifier("my-net", root=root)
    np.testing.assert_array_equal(network.weights[0], trained.network.weights[0])
    result = digitdraw.classify(draw_digit(7), model_ids=[4, "my-net"], root=root)
    assert sorted(result.probabilities, key=str) == [4, "my-net"] and not result.errors
    assert set(digitdraw.classify(draw_digit(7), root=root).probabilities) == {1, 2, 3, 4, 5, 6, "my-net"}


def test_stop_ends_the_run_after_the_batch_and_keeps_the_best_epoch(tiny_dataset, tmp_path):
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) >= 3  # Stop in the middle of the first epoch.

    trained = train_network(tiny(epochs=5), tiny_dataset, tmp_path, Monitor(should_stop=should_stop))
    assert len(asked) == 3, "the run stopped after the batch that saw the request"
    assert trained.card.epochs_run == 1 and trained.history.best_epoch == 1
    assert saved_models.load("my-net", tmp_path).card.model_sha256 == trained.card.model_sha256


def test_the_kept_drawings_are_given_exactly_when_the_settings_ask_for_them(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="ask for the kept drawings 3 times an epoch"):
        train_network(tiny(kept_repeats=3), tiny_dataset, tmp_path)
    assert not (tmp_path / "custom").exists(), "refused before anything trained"


def test_custom_models_follow_the_one_cache_rule(tmp_path):
    save_constant_model("net-a", 3, tmp_path)
    save_constant_model("net-b", 5, tmp_path)
    models, errors = inference.load_models(root=tmp_path)
    assert {"net-a", "net-b"} <= set(models) and not {k for k in errors if isinstance(k, str)}
    loads = inference.MODEL_CACHE.loads
    inference.load_models(root=tmp_path)
    assert inference.MODEL_CACHE.loads == loads, "nothing changed, nothing is read again"

    save_constant_model("net-a", 8, tmp_path)  # Trained again under the same name.
    assert digitdraw.classify(draw_digit(1), model_ids=["net-a"], root=tmp_path).digit("net-a") == 8
    assert inference.MODEL_CACHE.loads == loads + 1, "only the network whose files changed is read again"

    assert saved_models.delete_custom("net-b", tmp_path)
    assert "net-b" not in inference.load_models(root=tmp_path)[0], "a deleted network goes at once"
    assert inference.available_model_ids(tmp_path) == (1, 2, 3, 4, 5, 6, "net-a")
    assert not saved_models.delete_custom("net-b", tmp_path), "deleting it twice finds nothing"
    assert not [p for p in (tmp_path / "custom").iterdir() if p.name.startswith(".")]


def test_the_study_models_cannot_be_deleted_and_odd_folders_are_not_networks(tmp_path):
    for study_id in (4, "4", "model_4", "../model_4"):
        with pytest.raises(ValueError):
            saved_models.delete_custom(study_id, tmp_path)
    (tmp_path / "custom" / ".my-net.123.tmp").mkdir(parents=True)
    (tmp_path / "custom" / "not a name").mkdir()
    (tmp_path / "custom" / "file-not-folder").write_text("")
    assert saved_models.custom_names(tmp_path) == []


def test_a_damaged_custom_network_is_reported_for_itself(tmp_path):
    save_constant_model("net-a", 3, tmp_path)
    (tmp_path / "custom" / "net-a" / saved_models.MODEL_FILE).write_bytes(b"not a model")
    result = digitdraw.classify(draw_digit(1), model_ids=["net-a"], root=tmp_path)
    assert "Network 'net-a' cannot be loaded" in result.errors["net-a"]
    assert "python -m digitdraw train --name net-a" in result.errors["net-a"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--hidden", "0", "--activation", "tanh", "--name", "my-net"], "from 4 to 512"),
        (["--hidden", "32", "--activation", "swish", "--name", "my-net"], "activation must be one of"),
        (["--hidden", "32", "--activation", "tanh", "--name", "a/b"], "letters, digits and dashes"),
        (["--hidden", "32", "--activation", "tanh", "--name", ".."], "letters, digits and dashes"),
        (["--hidden", "32", "--activation", "tanh", "--name", "taken"], "exists already"),
        (["--hidden", "32", "--name", "my-net"], "needs --hidden (layer sizes) and --activation"),
        (["--hidden", "32", "--activation", "tanh", "--name", "x", "--epochs", "40"], "from 1 to 30"),
        (["--hidden", "32", "--activation", "tanh", "--name", "x", "--model", "4"], "--model trains"),
    ],
)
def test_a_bad_request_exits_with_one_line_and_writes_nothing(arguments, message, tmp_path, capsys):
    out = tmp_path / "out"
    save_constant_model("taken", 1, out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    code = main(["train", *arguments, "--out", str(out)])
    error = capsys.readouterr().err
    assert code != 0
    assert message in error and error.count("\n") == 1, error
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before


def test_the_command_line_trains_a_network_and_load_classifier_finds_it(tmp_path, capsys):
    out = tmp_path / "models"
    arguments = [
        "--hidden",
        "8",
        "--activation",
        "gelu",
        "--name",
        "cli-net",
        "--epochs",
        "2",
        "--limit",
        "500",
    ]
    assert main(["train", *arguments, "--optimizer", "adam", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err.count("cli-net [") == 2 and "val " in printed.err  # One bar line per epoch.
    assert "cli-net 784-8-10" in printed.out
    network = digitdraw.load_classifier("cli-net", root=out)
    assert network.architecture.hidden_activation == "gelu"
    assert main(["train", *arguments, "--out", str(out)]) == 2, "the name is taken now"
    assert "--force" in capsys.readouterr().err


def test_a_limited_dataset_is_what_load_dataset_gives_for_that_limit(small_splits, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITDRAW_CACHE", str(tmp_path))
    config = TrainConfig(validation_size=300, drawn_eval_size=40)
    full = load_dataset(config, small_splits)
    limited = load_dataset(replace(config, train_limit=500), small_splits)
    sliced = full.limited(500)
    assert sliced.ranges == limited.ranges and sliced.checksum == limited.checksum
    for split in ("train", "validation", "test", "drawn"):
        for ours, theirs in zip(sliced.split(split), limited.split(split)):
            np.testing.assert_array_equal(ours, theirs)
    assert full.limited(None).ranges == full.ranges
