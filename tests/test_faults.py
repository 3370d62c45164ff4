"""Every file the app reads can be missing, truncated, malformed or inconsistent: each fault is reported for
its own model only, the other models keep answering, and nothing on disk is changed."""

from __future__ import annotations

import json
import shutil

import pytest
from drawings import draw_digit

import digitdraw
from digitdraw.serving import saved_models
from digitdraw.serving.saved_models import model_dir


def _truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _edit_json(name, change):
    def corrupt(folder):
        path = folder / name
        payload = json.loads(path.read_text())
        change(payload)
        path.write_text(json.dumps(payload))

    return corrupt


def _drop_last_epoch(history):
    """A history that is consistent in itself but one epoch shorter than model.json says."""
    history["epoch"].pop()
    history["best_epoch"] = history["epoch"][-1]
    for split in ("train", "validation", "test"):
        for metric in ("loss", "accuracy"):
            history[split][metric].pop()


FAULTS = {
    "keras-truncated": (lambda folder: _truncate(folder / "model.keras"), "model.keras"),
    "keras-not-a-zip": (lambda folder: (folder / "model.keras").write_bytes(b"not a model"), "model.keras"),
    "keras-of-another-model": (
        lambda folder: shutil.copyfile(model_dir(5, folder.parent) / "model.keras", folder / "model.keras"),
        "different model.keras",
    ),
    "keras-missing": (lambda folder: (folder / "model.keras").unlink(), "model.keras is missing"),
    "card-missing": (lambda folder: (folder / "model.json").unlink(), "model.json is missing"),
    "card-malformed": (lambda folder: (folder / "model.json").write_text("{ not json"), "not valid JSON"),
    "card-wrong-type": (
        _edit_json("model.json", lambda card: card.update(parameters="many")),
        "does not match the saved-model format",
    ),
    "metrics-missing": (lambda folder: (folder / "metrics.json").unlink(), "metrics.json is missing"),
    "metrics-malformed": (
        lambda folder: (folder / "metrics.json").write_text("{ not json"),
        "not valid JSON",
    ),
    "metrics-not-an-object": (lambda folder: (folder / "metrics.json").write_text("[1, 2]"), "JSON object"),
    "metrics-truncated": (lambda folder: _truncate(folder / "metrics.json"), "not valid JSON"),
    "metrics-accuracy-above-one": (
        _edit_json("metrics.json", lambda metrics: metrics["accuracy"].update(test=1.5)),
        "accuracy.test",
    ),
    "metrics-matrix-not-10x10": (
        _edit_json("metrics.json", lambda metrics: metrics["confusion_matrix"].pop()),
        "shape (9, 10)",
    ),
    "history-missing": (lambda folder: (folder / "history.json").unlink(), "history.json is missing"),
    "history-malformed": (lambda folder: (folder / "history.json").write_text("nonsense"), "not valid JSON"),
    "history-short": (
        _edit_json("history.json", lambda h: h["test"]["accuracy"].pop()),
        "different number of epochs",
    ),
    "history-disagrees-with-metrics": (
        _edit_json("history.json", lambda h: _drop_last_epoch(h)),
        "disagree on the epochs",
    ),
    "folder-missing": (lambda folder: shutil.rmtree(folder), "no saved model"),
    "folder-is-a-file": (lambda folder: shutil.rmtree(folder) or folder.write_text("oops"), "no saved model"),
}


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_damaged_model_is_isolated_and_nothing_is_overwritten(fault, models_copy):
    corrupt, message = FAULTS[fault]
    corrupt(model_dir(3, models_copy))
    before = _snapshot(models_copy)

    with pytest.raises(saved_models.SavedModelError) as error:
        saved_models.load(3, models_copy)
    assert message in str(error.value)
    assert "python -m digitdraw train --model 3" in str(error.value)

    result = digitdraw.classify(draw_digit(7), root=models_copy)
    assert sorted(result.errors) == [3]
    assert sorted(result.probabilities) == [1, 2, 4, 5, 6]
    assert result.digit(4) == 7
    assert _snapshot(models_copy) == before


def test_the_card_of_another_model_is_refused(models_copy):
    shutil.copyfile(model_dir(4, models_copy) / "model.json", model_dir(3, models_copy) / "model.json")
    with pytest.raises(saved_models.SavedModelError, match=r"different model\.keras"):
        saved_models.load(3, models_copy)


def test_a_card_naming_another_model_is_refused(models_copy):
    # Rewrite model.json consistently (checksum intact) but for another model id.
    _edit_json("model.json", lambda card: card.update(model_id=4))(model_dir(3, models_copy))
    with pytest.raises(saved_models.SavedModelError, match="describes another model"):
        saved_models.load(3, models_copy)


def test_a_card_whose_architecture_does_not_fit_the_weights_is_refused(models_copy):
    def narrower(card):
        for layer in card["architecture"]["layers"][:-1]:
            layer["units"] = 16

    _edit_json("model.json", narrower)(model_dir(3, models_copy))
    with pytest.raises(saved_models.SavedModelError, match="does not hold the architecture"):
        saved_models.load(3, models_copy)


def test_a_repaired_model_is_picked_up_again(models_copy):
    original = (model_dir(2, models_copy) / "model.keras").read_bytes()
    _truncate(model_dir(2, models_copy) / "model.keras")
    assert 2 in digitdraw.classify(draw_digit(1), root=models_copy).errors
    (model_dir(2, models_copy) / "model.keras").write_bytes(original)
    assert 2 not in digitdraw.classify(draw_digit(1), root=models_copy).errors


@pytest.mark.parametrize("fault", ["keras-missing", "keras-of-another-model", "folder-missing"])
def test_a_damaged_committee_member_leaves_the_others_on_their_own_methods(fault, models_copy):
    # The committed models 1-5 add model 6's energy to their digit score; without model 6 each answers
    # with the method of its own kept in its calibration file, and that method's threshold.
    FAULTS[fault][0](model_dir(6, models_copy))
    result = digitdraw.classify(draw_digit(7), root=models_copy)
    assert sorted(result.errors) == [6]
    for model_id in (1, 2, 3, 4, 5):
        committee = saved_models.load(model_id, models_copy).calibration.novelty.committee
        assert committee is not None and committee.model_id == 6
        assert result.digit_thresholds[model_id] == committee.fallback_threshold
        assert result.digit_score(model_id) is not None
