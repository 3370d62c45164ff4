"""Distillation: the loss is Hinton et al.'s, the teacher answers on the student's own augmented images,
a distilled model records its teacher, and a teacher that cannot teach is refused with a clear message."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from saved import save_constant_model

from digitdraw.learning import distill
from digitdraw.learning.augment import augment
from digitdraw.learning.config import TrainConfig, recipe_name
from digitdraw.learning.data import SplitRange
from digitdraw.learning.distill import distillation_loss, load_teacher, pack_targets
from digitdraw.learning.train import train_model, train_models
from digitdraw.serving import saved_models
from digitdraw.serving.networks import SAVED_MODELS_ENV_VAR, get_spec

# Two quick epochs on the shared ``tiny_dataset`` (tests/conftest.py).
TINY = TrainConfig(epochs=2, validation_size=300, drawn_eval_size=40, batch_size=64)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@pytest.mark.parametrize(("temperature", "weight"), [(3.0, 0.9), (1.0, 0.5), (0.5, 1.0), (8.0, 0.1)])
def test_the_loss_is_hintons_on_a_hand_computed_batch(temperature, weight):
    import keras

    rng = np.random.default_rng(5)
    labels = np.array([3, 0, 9])
    teacher = rng.normal(0, 4, size=(3, 10))
    student = rng.normal(0, 2, size=(3, 10))
    # By hand: weight * T^2 * KL(teacher_T || student_T) + (1 - weight) * cross-entropy on the labels.
    teacher_soft = np.exp(_log_softmax(teacher / temperature))
    kl = (teacher_soft * (np.log(teacher_soft) - _log_softmax(student / temperature))).sum(axis=1)
    cross_entropy = -_log_softmax(student)[np.arange(3), labels]
    expected = weight * temperature**2 * kl + (1 - weight) * cross_entropy

    loss = distillation_loss(temperature, weight)
    got = keras.ops.convert_to_numpy(
        loss(
            keras.ops.convert_to_tensor(pack_targets(labels, teacher)),
            keras.ops.convert_to_tensor(student.astype(np.float32)),
        )
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # A student that answers exactly as the teacher pays only the labels' share.
    same = keras.ops.convert_to_numpy(
        loss(
            keras.ops.convert_to_tensor(pack_targets(labels, teacher)),
            keras.ops.convert_to_tensor(teacher.astype(np.float32)),
        )
    )
    np.testing.assert_allclose(same, (1 - weight) * -_log_softmax(teacher)[np.arange(3), labels], atol=1e-4)


@pytest.fixture
def teachers(tiny_dataset, tmp_path, monkeypatch):
    """The app's saved-models folder, here holding model 4 trained briefly on the tiny dataset."""
    root = tmp_path / "teachers"
    monkeypatch.setenv(SAVED_MODELS_ENV_VAR, str(root))
    train_model(4, tiny_dataset, TINY, out_dir=root)
    return root


def test_a_distilled_run_learns_from_the_teacher_on_its_own_augmented_images(
    tiny_dataset, teachers, tmp_path, monkeypatch
):
    seen = []
    original = distill.Teacher.targets

    def spy(self, images, labels):
        seen.append(images.copy())
        return original(self, images, labels)

    monkeypatch.setattr(distill.Teacher, "targets", spy)
    config = replace(TINY, teacher=4)
    trained = train_model(2, tiny_dataset, config, out_dir=tmp_path / "students")

    # The teacher answered, epoch by epoch, on exactly the images the student was fitted on.
    rng = np.random.default_rng(config.seed)
    assert len(seen) == 2
    for images in seen:
        np.testing.assert_array_equal(images, augment(tiny_dataset.x_train, rng, config.augmentation))

    # Recorded: which teacher (and which of its weights), at what temperature and weight.
    card = saved_models.load(2, tmp_path / "students").card
    teacher_card = saved_models.load(4, teachers).card
    assert card.config["teacher"] == 4 and card.config["teacher_model_sha256"] == teacher_card.model_sha256
    assert card.config["distill_temperature"] == distill.DEFAULT_TEMPERATURE
    assert card.config["distill_weight"] == distill.DEFAULT_WEIGHT
    assert card.config["recipe"] == recipe_name(config) == "custom"
    # The student keeps its architecture, softmax output included, and answers in probabilities.
    assert card.architecture == get_spec(2).architecture
    probabilities = trained.network.predict_proba(tiny_dataset.x_test[:5])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_with_the_whole_weight_on_the_teacher_the_labels_do_not_matter(tiny_dataset, teachers, tmp_path):
    config = replace(TINY, epochs=1, teacher=4, distill_weight=1.0)
    shuffled = np.random.default_rng(0).permutation(tiny_dataset.y_train)
    true_labels = train_model(2, tiny_dataset, config, out_dir=tmp_path / "a")
    wrong_labels = train_model(2, replace(tiny_dataset, y_train=shuffled), config, out_dir=tmp_path / "b")
    for a, b in zip(true_labels.network.weights, wrong_labels.network.weights):
        np.testing.assert_array_equal(a, b)
    # With labels alone, the same wrong labels give another network.
    plain = train_model(
        2,
        replace(tiny_dataset, y_train=shuffled),
        replace(config, teacher=None, distill_weight=distill.DEFAULT_WEIGHT),
        tmp_path / "c",
    )
    assert not np.array_equal(plain.network.weights[0], true_labels.network.weights[0])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"teacher": 9}, "teacher: unknown model id 9"),
        ({"teacher": "6"}, "teacher: model id must be an integer"),
        ({"teacher": 6, "distill_temperature": 0.0}, "distill_temperature must be a number above 0"),
        ({"teacher": 6, "distill_temperature": -2.0}, "distill_temperature must be a number above 0"),
        ({"teacher": 6, "distill_temperature": math.nan}, "distill_temperature must be a number above 0"),
        ({"teacher": 6, "distill_weight": 0.0}, "distill_weight must be a number above 0 and at most 1"),
        ({"teacher": 6, "distill_weight": 1.5}, "distill_weight must be a number above 0 and at most 1"),
    ],
)
def test_bad_distillation_settings_are_value_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_a_teacher_that_cannot_teach_is_refused(tiny_dataset, teachers, tmp_path):
    ranges = tiny_dataset.ranges
    with pytest.raises(ValueError, match="model 4 cannot be its own teacher"):
        train_model(4, tiny_dataset, replace(TINY, teacher=4), out_dir=tmp_path)
    with pytest.raises(ValueError, match="teacher model 5 is not available: Model 5 cannot be loaded"):
        train_model(2, tiny_dataset, replace(TINY, teacher=5), out_dir=tmp_path)
    save_constant_model(6, 3, teachers)  # Its card names no MNIST checksum nor preprocessing.
    with pytest.raises(ValueError, match="teacher model 6 was trained on other data or other preprocessing"):
        load_teacher(6, 2, tiny_dataset.checksum, ranges)
    # A teacher that trained on the student's validation images would leak them into the kept epoch.
    validation = SplitRange("mnist-train", 1000, 1500)
    with pytest.raises(ValueError, match="images 0-1200, which overlap the student's validation images"):
        load_teacher(4, 2, tiny_dataset.checksum, {**ranges, "validation": validation})
    assert load_teacher(4, 2, tiny_dataset.checksum, ranges).model_id == 4
    assert not (tmp_path / "model_2").exists() and not (tmp_path / "model_4").exists()


def test_training_several_models_refuses_a_teacher_among_them_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="model 6 cannot be its own teacher"):
        train_models([2, 6], replace(TINY, teacher=6), out_dir=tmp_path, splits="not loaded")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--teacher", "9"], "teacher: unknown model id 9"),
        (["train", "--teacher", "6", "--temperature", "0"], "distill_temperature must be a number above 0"),
        (["train", "--teacher", "6", "--distill-weight", "2"], "distill_weight must be a number above 0"),
        (["train", "--model", "2", "--temperature", "4"], "needs a teacher: add --teacher"),
        (["train", "--model", "2", "--distill-weight", "0.5"], "needs a teacher: add --teacher"),
    ],
)
def test_the_command_line_rejects_bad_distillation_settings(arguments, message, capsys):
    from digitdraw.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--teacher", "6"], ["--temperature", "2"], ["--strokes", "0.5"]])
def test_a_network_of_one_s_own_refuses_the_study_networks_recipe_options(option, capsys, tmp_path):
    from digitdraw.cli import main

    arguments = ["train", "--name", "mine", "--hidden", "8", "--activation", "relu", "--out", str(tmp_path)]
    assert main([*arguments, *option]) == 2
    assert f"{option[0]} apply to the study's networks" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_a_teacher_a_distillation_setting_is_refused_not_silently_a_custom_recipe():
    with pytest.raises(ValueError, match="needs a teacher"):
        TrainConfig(distill_temperature=4.0)
    assert recipe_name(TrainConfig(teacher=6)) == "custom"


def test_the_command_line_refuses_a_model_as_its_own_teacher(capsys, tmp_path):
    from digitdraw.cli import main

    assert main(["train", "--model", "2", "6", "--teacher", "6", "--out", str(tmp_path)]) == 2
    assert "model 6 cannot be its own teacher" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _kept_parts(dataset, count: int = 60):
    """The first ``count`` test digits as kept drawings with ids 1..count, split and repeated twice."""
    from digitdraw.learning.kept_split import KeptDrawings, split

    drawings = KeptDrawings(
        ids=np.arange(1, count + 1),
        images=dataset.x_test[:count],
        labels=dataset.y_test[:count],
        source="test",
    )
    return split(drawings, repeats=2)


def test_a_distilled_run_with_kept_drawings_has_the_teacher_answer_on_those_too(
    tiny_dataset, teachers, tmp_path, monkeypatch
):
    seen = []
    original = distill.Teacher.targets

    def spy(self, images, labels):
        seen.append((images.copy(), labels.copy()))
        return original(self, images, labels)

    monkeypatch.setattr(distill.Teacher, "targets", spy)
    parts = _kept_parts(tiny_dataset)
    config = replace(TINY, teacher=4)
    trained = train_model(2, replace(tiny_dataset, kept=parts), config, out_dir=tmp_path / "students")
    # Each epoch the teacher answered on exactly the images the student was fitted on: the MNIST digits and
    # the repeated training part of the kept drawings, augmented together, label for label; never a
    # held-out drawing.
    kept_images, kept_labels = parts.training_arrays()
    rng = np.random.default_rng(config.seed)
    assert len(seen) == 2
    for images, labels in seen:
        expected = augment(np.concatenate([tiny_dataset.x_train, kept_images]), rng, config.augmentation)
        np.testing.assert_array_equal(images, expected)
        np.testing.assert_array_equal(labels, np.concatenate([tiny_dataset.y_train, kept_labels]))
    assert trained.card.config["teacher"] == 4
    assert trained.metrics.kept_drawings.held_out == len(parts.held_out)


def test_several_models_with_a_baseline_a_teacher_and_kept_drawings_each_get_their_part(
    small_splits, tiny_dataset, teachers, tmp_path, monkeypatch
):
    monkeypatch.setenv("DIGITDRAW_CACHE", str(tmp_path / "cache"))
    taught = []
    original = distill.Teacher.targets
    monkeypatch.setattr(
        distill.Teacher,
        "targets",
        lambda self, images, labels: taught.append(1) or original(self, images, labels),
    )
    parts = _kept_parts(tiny_dataset)
    out = tmp_path / "models"
    save_constant_model(2, digit=3, root=out)  # The model the run replaces reads everything as a 3.
    (trained,) = train_models(
        [2], replace(TINY, teacher=4), out_dir=out, splits=small_splits, baseline=TINY, kept=parts
    )

    # The teacher taught the distilled run's two epochs, not the study-recipe baseline's.
    assert len(taught) == 2 and trained.card.config["teacher"] == 4
    assert trained.metrics.baseline is not None and trained.metrics.baseline.recipe == "study"
    # "Before" is the model in the output folder, scored on the held-out drawings, not the baseline's
    # scratch folder (where there is none).
    record = trained.metrics.kept_drawings
    assert record.held_out == len(parts.held_out)
    assert record.accuracy_before == pytest.approx(float(np.mean(parts.held_out.labels == 3)))
