"""Opening a Keras digit model (issue 27): every supported layer kind against Keras, the input scaling and
output detected, the round trips of the exports, the commands, and hostile files refused in one sentence
with nothing written."""

from __future__ import annotations

import io
import json
import zipfile

import float32
import h5py
import numpy as np
import pytest

import digitdraw
from digitdraw.cli import main
from digitdraw.learning import export, opening
from digitdraw.serving import inference, saved_models
from digitdraw.serving.networks import MODEL_IDS

keras = pytest.importorskip("keras")
layers = keras.layers


def _mlp_softmax():
    return keras.Sequential(
        [keras.Input((784,)), layers.Dense(24, activation="relu"), layers.Dense(10, activation="softmax")]
    )


def _mlp_logits_tanh_sigmoid():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(16, activation="tanh"),
            layers.Dense(12, activation="sigmoid"),
            layers.Dense(10),
        ]
    )


def _keras_example_convnet():
    """keras.io's "Simple MNIST convnet", smaller."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(6, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(8, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def _strided_same_average_gelu():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(4, 5, strides=2, padding="same", activation="gelu"),
            layers.AveragePooling2D(2),
            layers.Conv2D(5, (3, 2), strides=(1, 2), activation="leaky_relu"),
            layers.MaxPooling2D((3, 3), strides=(2, 1)),
            layers.Flatten(),
            layers.Dense(10),
            layers.Softmax(),
        ]
    )


def _batch_norms_and_activation_layers():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1 / 255.0),
            layers.Conv2D(4, 3),
            layers.BatchNormalization(),
            layers.MaxPooling2D(2),
            layers.ReLU(),
            layers.Conv2D(6, 3, activation="relu"),
            layers.BatchNormalization(),  # After an activation: folded into the next weighted layer.
            layers.Flatten(),
            layers.Dense(16),
            layers.BatchNormalization(),
            layers.LeakyReLU(negative_slope=0.1),
            layers.Dropout(0.3),
            layers.Dense(10),
            layers.Activation("softmax"),
        ]
    )


def _pool_then_batch_norm_then_relu():
    """A BatchNormalization after a pool, then the activation: folded back across the pool into the conv."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(5, 3),
            layers.MaxPooling2D(2),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(4, 3),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.BatchNormalization(),  # On the flattened maps: folded into the Dense after it.
            layers.Dense(10, activation="softmax"),
        ]
    )


BUILDERS = {
    "pool, batch norm, relu; a batch norm after a flatten": _pool_then_batch_norm_then_relu,
    "dense relu, softmax": _mlp_softmax,
    "flatten, tanh, sigmoid, logits": _mlp_logits_tanh_sigmoid,
    "keras example convnet": _keras_example_convnet,
    "strides, same padding, average pool, gelu, leaky relu": _strided_same_average_gelu,
    "batch norms, rescaling, activation layers": _batch_norms_and_activation_layers,
}


def _with_random_statistics(model, seed: int = 0):
    """Give every BatchNormalization statistics and scales other than the identity, as training would."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, size),  # gamma, positive: a max pool may follow
                    rng.normal(0, 0.3, size),  # beta
                    rng.normal(0, 0.5, size),  # moving mean
                    rng.uniform(0.5, 2.0, size),  # moving variance
                ]
            )
    return model


@pytest.fixture(scope="module")
def test_digits(tiny_dataset):
    return tiny_dataset.x_test[:64]


@pytest.mark.parametrize("kind", BUILDERS)
def test_every_supported_layer_kind_reads_as_keras_does(kind, test_digits):
    keras.utils.set_random_seed(1)
    model = _with_random_statistics(BUILDERS[kind]())
    converted = opening.convert_keras(model)
    network = converted.network
    expected = model.predict(test_digits.reshape(len(test_digits), *model.input_shape[1:]), verbose=0)
    if converted.output == "logits":
        expected = np.exp(expected - expected.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
    terms = float32.chain_terms(network.architecture)[-1]
    # A folded BatchNormalization rounds its product once more per layer it touches.
    float32.assert_probabilities_close(
        network.predict_proba(test_digits), expected, network.logits(test_digits), terms + 8
    )


def test_what_opening_changed_is_said(test_digits):
    converted = opening.convert_keras(_with_random_statistics(_batch_norms_and_activation_layers()))
    notes = " ".join(converted.notes)
    assert "Rescaling" in notes and "Dropout" in notes and notes.count("BatchNormalization") == 3
    summary = converted.architecture.summary
    assert converted.architecture.input_scale == pytest.approx(1 / 255.0)
    assert summary == "784-conv4-pool-conv6-16-10" and converted.output == "probabilities"
    assert [layer.activation for layer in converted.architecture.layers if layer.has_weights] == [
        "relu",
        "relu",
        "leaky_relu",
        "softmax",
    ]


def _trained(model, images, labels, inputs, from_logits: bool = False):
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
    )
    model.fit(
        inputs(images).reshape(len(images), *model.input_shape[1:]),
        labels,
        epochs=3,
        batch_size=64,
        verbose=0,
    )
    return model


def _standardised(images):
    return (images - opening.MNIST_MEAN) / opening.MNIST_STD


@pytest.fixture(scope="module")
def example_files(tiny_dataset, tmp_path_factory):
    """Three models as people save them with Keras: the Keras example convnet (pixels 0 to 1), a tutorial
    MLP giving logits on standardised pixels, and one whose Rescaling layer expects pixels 0 to 255."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("keras")
    images, labels = tiny_dataset.x_train, tiny_dataset.y_train
    convnet = _trained(_keras_example_convnet(), images, labels, lambda x: x)
    mlp = keras.Sequential(
        [keras.Input((784,)), layers.Dense(64, activation="relu"), layers.Dropout(0.2), layers.Dense(10)]
    )
    mlp = _trained(mlp, images, labels, _standardised, from_logits=True)
    bytes_model = keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Rescaling(1 / 255.0),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    bytes_model = _trained(bytes_model, images, labels, lambda x: x * 255.0)
    files = {}
    for name, model in (("convnet", convnet), ("mlp", mlp), ("bytes", bytes_model)):
        model.save(folder / f"{name}.keras")
        files[name] = (folder / f"{name}.keras", model)
    return files


@pytest.fixture
def root(tmp_path):
    """A saved-models folder with the committed models and no network of anyone's."""
    import shutil

    root = tmp_path / "saved_models"
    shutil.copytree(saved_models.saved_models_dir(), root, ignore=shutil.ignore_patterns("custom"))
    return root


def test_the_keras_example_and_a_tutorial_mlp_open_and_answer_within_1e_5_of_keras(
    example_files, tiny_dataset, root
):
    digits = tiny_dataset.x_test[:100]
    convnet = opening.open_network(example_files["convnet"][0], "convnet", root, dataset=tiny_dataset)
    mlp = opening.open_network(example_files["mlp"][0], "mlp", root, dataset=tiny_dataset)
    assert (
        convnet.card.opened.input_scaling == "pixels 0 to 1" and convnet.card.opened.output == "probabilities"
    )
    assert (
        mlp.card.opened.input_scaling.startswith("pixels standardised") and mlp.card.opened.output == "logits"
    )
    assert (
        mlp.card.architecture.input_scale == pytest.approx(1 / opening.MNIST_STD) and convnet.history is None
    )
    bytes_model = opening.open_network(example_files["bytes"][0], "bytes", root, dataset=tiny_dataset)
    assert bytes_model.card.opened.input_scaling == "pixels 0 to 255"
    assert bytes_model.card.architecture.input_scale == pytest.approx(1.0)  # 255, then the file's 1/255.
    keras_convnet = example_files["convnet"][1].predict(digits[..., None], verbose=0)
    keras_mlp = keras.ops.convert_to_numpy(
        keras.activations.softmax(example_files["mlp"][1](_standardised(digits.reshape(-1, 784))))
    )
    assert np.abs(convnet.network.predict_proba(digits) - keras_convnet).max() <= 1e-5
    assert np.abs(mlp.network.predict_proba(digits) - keras_mlp).max() <= 1e-5
    assert mlp.metrics.accuracy["test"] > 0.6 and convnet.metrics.accuracy["test"] > 0.3

    # Everywhere the study's models are: the list of models, classify, the saved files (no history).
    assert inference.available_model_ids(root) == (*MODEL_IDS, "bytes", "convnet", "mlp")
    result = digitdraw.classify((digits[0] * 255).astype(np.uint8), model_ids=["mlp", 4], root=root)
    assert not result.errors and set(result.probabilities) == {"mlp", 4}
    names = {path.name for path in saved_models.model_dir("mlp", root).iterdir()}
    assert names == {saved_models.CARD_FILE, saved_models.MODEL_FILE, saved_models.METRICS_FILE}


def test_an_export_opens_again_bit_for_bit_as_npz_and_within_float32_as_keras(
    example_files, tiny_dataset, root, tmp_path
):
    digits = tiny_dataset.x_test[:100]
    original = opening.open_network(example_files["mlp"][0], "mlp", root, dataset=tiny_dataset)
    npz, card = export.export(original, "npz", tmp_path / "mlp.npz")
    assert "pixels standardised" in card.read_text() and "to_mnist" in card.read_text()
    again = opening.open_network(npz, "mlp-npz", root, dataset=tiny_dataset)
    np.testing.assert_array_equal(again.network.predict_proba(digits), original.network.predict_proba(digits))
    with np.load(npz, allow_pickle=False) as archive:  # NumPy alone reads it.
        scale = json.loads(str(archive["architecture"]))["input_scale"]
        assert scale == original.card.architecture.input_scale

    keras_file, _ = export.export(original, "keras", tmp_path / "mlp.keras")
    loaded = keras.saving.load_model(keras_file)  # Takes to_mnist's 0-1 images: the scaling is inside.
    expected = loaded.predict(digits, verbose=0)
    logits = original.network.logits(digits)
    terms = float32.chain_terms(original.network.architecture)[-1]
    float32.assert_probabilities_close(original.network.predict_proba(digits), expected, logits, terms)
    with zipfile.ZipFile(keras_file) as archive:
        note = json.loads(archive.read("metadata.json"))["digitdraw"]
    assert "to_mnist" in note["preprocessing"] and note["model"] == "mlp"
    reopened = opening.open_network(keras_file, "mlp-keras", root, dataset=tiny_dataset)
    assert reopened.card.opened.input_scaling == "pixels 0 to 1"
    float32.assert_probabilities_close(reopened.network.predict_proba(digits), expected, logits, terms)


@pytest.mark.parametrize("model_id", [4, 6])
def test_the_study_s_networks_export_and_keras_gives_digitdraw_s_probabilities(
    model_id, tiny_dataset, tmp_path
):
    model = saved_models.load(model_id)
    written, card = export.export(model, "keras", tmp_path / "model.keras")
    digits = tiny_dataset.x_test[:50]
    expected = keras.saving.load_model(written).predict(digits, verbose=0)
    terms = float32.chain_terms(model.network.architecture)[-1]
    float32.assert_probabilities_close(
        model.network.predict_proba(digits), expected, model.network.logits(digits), terms
    )
    assert "Calibration" in card.read_text() and "Temperature" in card.read_text()


@pytest.fixture
def commands(monkeypatch, tiny_dataset, root):
    """Run ``python -m digitdraw models ...`` on ``root``, MNIST as the tiny dataset; (code, out, err)."""
    from digitdraw.learning import train

    monkeypatch.setattr(train, "load_dataset", lambda config: tiny_dataset)

    def run(arguments: list[str], capsys) -> tuple[int, str, str]:
        try:
            code = main(["models", *arguments, "--root", str(root)])
        except SystemExit as done:
            code = done.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_models_add_list_export_and_remove(commands, example_files, root, tmp_path, capsys):
    code, out, _ = commands(["add", str(example_files["mlp"][0]), "--name", "tutorial"], capsys)
    assert code == 0 and "output read as logits, input as pixels standardised" in out
    code, out, _ = commands(["list"], capsys)
    assert code == 0 and "tutorial: 784-64-10" in out and "opened from mlp.keras, uncalibrated" in out
    assert out.count("the study's") == len(MODEL_IDS)
    for file_format in export.EXPORT_FORMATS:
        target = tmp_path / f"tutorial.{file_format}"
        code, out, _ = commands(["export", "tutorial", "--format", file_format, "--out", str(target)], capsys)
        assert code == 0 and target.exists() and target.with_suffix(".md").exists()
    code, _, err = commands(["remove", "4"], capsys)
    assert code == 2 and "model 4 is one of the study's" in err and saved_models.model_dir(4, root).exists()
    assert commands(["remove", "tutorial"], capsys)[0] == 0
    code, _, err = commands(["remove", "tutorial"], capsys)
    assert code == 1 and "there is no network named 'tutorial'" in err


def _lambda_model_file(path):
    model = keras.Sequential(
        [keras.Input((784,)), layers.Lambda(lambda x: x * 2), layers.Dense(10, activation="softmax")]
    )
    model.save(path)


@keras.saving.register_keras_serializable(package="hostile")
class Doubling(layers.Layer):
    def call(self, inputs):
        return inputs * 2


def _custom_object_file(path):
    model = keras.Sequential([keras.Input((784,)), Doubling(), layers.Dense(10, activation="softmax")])
    model.save(path)


def _fifty_million_weights_file(path):
    """A real .keras zip whose weights file declares 50 million weights, stored as nothing (HDF5's fill)."""
    model = keras.Sequential([keras.Input((784,)), layers.Dense(10, activation="softmax")])
    model.save(path)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("layers/dense/vars/0", shape=(5_000, 10_000), dtype="float32")
    with zipfile.ZipFile(path) as original:
        members = {name: original.read(name) for name in original.namelist()}
    members["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as rewritten:
        for name, content in members.items():
            rewritten.writestr(name, content)


def _rewritten_config(path, change) -> None:
    """A small real .keras file whose config.json ``change`` rewrites; its weights stay the 7,850 stored."""
    keras.Sequential([keras.Input((784,)), layers.Dense(10, activation="softmax")]).save(path)
    with zipfile.ZipFile(path) as original:
        members = {name: original.read(name) for name in original.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as rewritten:
        for name, content in members.items():
            rewritten.writestr(name, content)


def _huge_declared_input_file(path):
    """Its config declares 100 million inputs: Keras would build a Dense kernel of a billion weights (4 GB)
    before it found the stored weights do not fit."""

    def declare(config):
        for layer in config["config"]["layers"]:
            for holder in (layer["config"], layer.get("build_config", {})):
                for key in ("batch_shape", "input_shape"):
                    if key in holder:
                        holder[key] = [None, 100_000_000]

    _rewritten_config(path, declare)


def _input_declared_under_another_key_file(path):
    """Its input layer gives its size as ``shape``, with no batch shape and no layer's build_config."""

    def declare(config):
        for layer in config["config"]["layers"]:
            layer.pop("build_config", None)
            if layer["class_name"] == "InputLayer":
                del layer["config"]["batch_shape"]
                layer["config"]["shape"] = [1_000_000]
        config["config"].pop("build_input_shape", None)

    _rewritten_config(path, declare)


def _huge_declared_hidden_layer_file(path):
    """Its config adds a hidden layer of two million units, which no stored weights back."""

    def declare(config):
        dense = config["config"]["layers"][-1]
        hidden = json.loads(json.dumps(dense))
        hidden["config"].update(name="hidden", units=2_000_000, activation="relu")
        hidden.pop("build_config", None)
        config["config"]["layers"].insert(-1, hidden)

    _rewritten_config(path, declare)


def _weights_that_do_not_fit_file(path):
    """Its config declares twelve outputs; the weights stored are for ten."""

    def declare(config):
        config["config"]["layers"][-1]["config"]["units"] = 12

    _rewritten_config(path, declare)


def _truncated_file(path, example_files):
    content = example_files["convnet"][0].read_bytes()
    path.write_bytes(content[: len(content) // 2])


def _text_file(path):
    path.write_text("not a network\n")


def _sigmoid_outputs_file(path):
    keras.Sequential([keras.Input((784,)), layers.Dense(10, activation="sigmoid")]).save(path)


HOSTILE = {
    "not a Keras file": (_text_file, "is not a Keras model file"),
    "a truncated file": (_truncated_file, "is not a Keras model file"),
    "a Lambda layer": (_lambda_model_file, "is a Lambda, which DigitDraw cannot run"),
    "a custom layer": (_custom_object_file, "is a Doubling, which DigitDraw cannot run"),
    "50 million weights": (
        _fifty_million_weights_file,
        "holds 50,000,000 weights; DigitDraw opens networks of at most 10,000,000",
    ),
    "ten sigmoid outputs": (_sigmoid_outputs_file, "gives sigmoid outputs"),
    # Keras's own reason, its first line that says why (not its count of objects that failed to load).
    "weights that do not fit the config": (_weights_that_do_not_fit_file, "variable.shape=(784, 12)"),
    "a config declaring 100 million inputs": (
        _huge_declared_input_file,
        "upload.keras's config.json declares an input of 100,000,000 values; a digit is 28x28",
    ),
    "a config declaring its input under another key": (
        _input_declared_under_another_key_file,
        "upload.keras's config.json declares an input of 1,000,000 values; a digit is 28x28",
    ),
    "a config declaring a hidden layer of 2 million units": (
        _huge_declared_hidden_layer_file,
        "layers declare 1,590,000,010 weights; DigitDraw opens networks of at most 10,000,000",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_file_is_one_sentence_exit_1_and_nothing_written(
    case, commands, example_files, root, tmp_path, capsys
):
    make, message = HOSTILE[case]
    path = tmp_path / "upload.keras"
    make(path, example_files) if make is _truncated_file else make(path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, _, err = commands(["add", str(path), "--name", "hostile"], capsys)
    assert code == 1 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("../outside", 2, "a network's name must be 1 to 40 letters"),
        ("<b>bold</b>", 2, "a network's name must be 1 to 40 letters"),
        ("taken", 1, "a network named 'taken' exists already"),
    ],
)
def test_a_bad_or_taken_name_is_refused_and_nothing_written(
    name, code, message, commands, example_files, root, capsys
):
    from saved import save_constant_model

    save_constant_model("taken", 3, root)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    status, _, err = commands(["add", str(example_files["mlp"][0]), "--name", name], capsys)
    assert status == code and message in err and "Traceback" not in err
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert not (root.parent / "outside").exists()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    commands, root, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(opening, "MAX_OPEN_FILE_BYTES", 1_000)
    path = tmp_path / "big.keras"
    path.write_bytes(b"\0" * 1_001)
    code, _, err = commands(["add", str(path), "--name", "big"], capsys)
    assert code == 1 and "is 1,001 bytes; a network to open is at most 1,000" in err


def test_an_opened_network_has_no_history_and_one_added_is_refused(example_files, tiny_dataset, root):
    opening.open_network(example_files["mlp"][0], "mlp", root, dataset=tiny_dataset)
    directory = saved_models.model_dir("mlp", root)
    (directory / saved_models.HISTORY_FILE).write_text(
        (saved_models.model_dir(1, root) / saved_models.HISTORY_FILE).read_text()
    )
    with pytest.raises(saved_models.SavedModelError, match="opened from a file, which has no training run"):
        saved_models.load("mlp", root)


def test_calibrate_takes_a_network_s_name_as_well_as_the_study_s_ids(monkeypatch):
    from digitdraw.learning import calibration

    asked = []
    monkeypatch.setattr(calibration, "calibrate_models", lambda ids, root: asked.append(ids))
    assert main(["calibrate", "--model", "4", "course-net"]) == 0
    assert asked == [[4, "course-net"]]
    with pytest.raises(SystemExit):
        main(["calibrate", "--model", "../x"])


def test_export_names_one_network(commands, capsys):
    code, _, err = commands(["export", "all"], capsys)
    assert code == 2 and "name one network to export, not 'all'" in err
    code, _, err = commands(["export", "no-such-net"], capsys)
    assert code == 1 and "Network 'no-such-net' cannot be loaded" in err and err.count("\n") == 1


def _refusal(model) -> str:
    with pytest.raises(opening.OpenError) as refused:
        opening.convert_keras(model)
    return str(refused.value)


def test_layouts_that_do_not_chain_as_digitdraw_runs_are_refused_by_name():
    dense_on_rows = keras.Sequential(
        [keras.Input((28, 28)), layers.Dense(4, name="rows"), layers.Flatten(), layers.Dense(10)]
    )
    assert "layer 'rows' is a Dense on image; DigitDraw needs a Flatten" in _refusal(dense_on_rows)
    channels_first = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(2, 3),
            layers.Flatten(data_format="channels_first", name="cf"),
            layers.Dense(10),
        ]
    )
    assert "layer 'cf' flattens channels first" in _refusal(channels_first)
    negative = _with_random_statistics(
        keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                layers.Conv2D(2, 3, activation="relu"),
                layers.BatchNormalization(),
                layers.MaxPooling2D(2, name="pool"),
                layers.Flatten(),
                layers.Dense(10),
            ]
        )
    )
    batch_norm = next(layer for layer in negative.layers if isinstance(layer, layers.BatchNormalization))
    gamma, beta, mean, variance = batch_norm.get_weights()
    batch_norm.set_weights([-gamma, beta, mean, variance])
    assert "layer 'pool' is a max pool after a BatchNormalization with a negative scale" in _refusal(negative)


def test_layer_names_reach_sentences_and_notes_without_markup():
    model = keras.Sequential(
        [
            keras.Input((784,)),
            layers.Dropout(0.1, name="**bold** [link](https:evil.example) ![img](x)"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    (note,) = opening.convert_keras(model).notes
    assert not set("*[]()!<> ") & set(note.split(":")[0])


def _npz_with(path, change):
    """A DigitDraw export of model 2 whose architecture JSON ``change`` rewrote."""
    arrays = dict(np.load(io.BytesIO(export.npz_bytes(saved_models.load(2)))))
    description = json.loads(str(arrays["architecture"]))
    change(description)
    arrays["architecture"] = np.array(json.dumps(description))
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(input_shape=[784, 1]),
        lambda d: d.update(input_shape=[1]),
        lambda d: d.update(input_scale=1e9),
        lambda d: d["layers"][0].update(units=17),
    ],
)
def test_an_export_with_another_input_or_weights_that_do_not_fit_is_refused(
    change, tmp_path, root, tiny_dataset
):
    path = tmp_path / "changed.npz"
    _npz_with(path, change)
    with pytest.raises(
        opening.OpenError, match=r"not a DigitDraw network export|do not fit its architecture"
    ):
        opening.open_network(path, "changed", root, dataset=tiny_dataset)
    assert not saved_models.model_dir("changed", root).exists()


def test_a_weights_file_of_arrays_within_arrays_or_stored_as_nothing_is_refused(tmp_path):
    for make, message in (
        (
            lambda h: h.create_dataset("layers/dense/vars/0", shape=(2,), dtype=np.dtype(("f4", (100, 100)))),
            "not plain numbers",
        ),
        (
            lambda h: h.create_dataset("layers/dense/vars/0", shape=(1000, 100), dtype="f4"),
            "stored in a way Keras does not write",
        ),
    ):
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as handle:
            make(handle)
        with pytest.raises(opening.OpenError, match=message):
            opening._check_weights(buffer.getvalue(), "upload.keras")


def test_a_network_too_costly_to_read_is_refused(tmp_path, root, tiny_dataset):
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(48, 5, padding="same"),
            layers.Conv2D(48, 5, padding="same"),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )
    model.save(tmp_path / "costly.keras")
    with pytest.raises(
        opening.OpenError, match="multiply-adds a digit; DigitDraw opens networks of at most 20,000,000"
    ):
        opening.open_network(tmp_path / "costly.keras", "costly", root, dataset=tiny_dataset)


def test_an_export_never_writes_its_network_where_its_model_card_goes(tmp_path):
    with pytest.raises(ValueError, match="other than its model card"):
        export.export(saved_models.load(2), "npz", tmp_path / "card.md")
    assert not list(tmp_path.iterdir())
