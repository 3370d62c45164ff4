"""Take a network away: any saved model as a Keras file, as plain NumPy arrays, and its model card.

- ``.keras``: the saved model's own weights file, which Keras loads as it is,
  with what DigitDraw's input is written into its ``metadata.json`` (under
  ``digitdraw``): the same probabilities as DigitDraw's on ``to_mnist``'s images.
- ``.npz``: the architecture as JSON text and every kernel and bias, float32
  (``saved_models.EXPORT_*_KEY``), for people without TensorFlow, and which
  ``python -m digitdraw models add`` opens again bit for bit.
- the model card, Markdown: what the network is, how it was trained or where
  it came from, what it scores, and the preprocessing its input needs.

Nothing here imports TensorFlow: the web server builds downloads with it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from digitdraw.serving import saved_models
from digitdraw.serving.files import atomic_write
from digitdraw.serving.networks import ACTIVATION_LABELS, ModelId, is_custom

ExportFormat = Literal["keras", "npz"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("keras", "npz")
METADATA_MEMBER = "metadata.json"
METADATA_KEY = "digitdraw"
PREPROCESSING = (
    "DigitDraw's preprocessing, digitdraw.to_mnist: the ink as a white digit on black, its strokes "
    "brought to MNIST's pen width, deskewed, fitted into a 20x20 box and centred by its centre of mass "
    "on a 28x28 field, float32 from 0 to 1; MNIST's own digits went through it too for training"
)


def file_stem(model_id: ModelId) -> str:
    """The name an exported file is given: ``digitdraw-model-4``, ``digitdraw-my-net``."""
    return f"digitdraw-{model_id}" if is_custom(model_id) else f"digitdraw-model-{model_id}"


def _input_note(model: saved_models.SavedModel) -> dict[str, object]:
    """What the network reads and gives, for the Keras file's metadata."""
    architecture = model.card.architecture
    return {
        "model": model.card.model_id,
        "architecture": architecture.summary,
        "input": "28x28 float32 images from 0 to 1, shape (N, 28, 28)",
        "preprocessing": PREPROCESSING,
        "input_scaling_inside_the_model": [architecture.input_scale, architecture.input_offset],
        "output": "10 softmax probabilities, one per digit 0-9",
        "model_sha256": model.card.model_sha256,
    }


def keras_bytes(model: saved_models.SavedModel) -> bytes:
    """The saved model's ``.keras`` file with DigitDraw's note on its input in ``metadata.json``."""
    source = (model.directory / saved_models.MODEL_FILE).read_bytes()
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as original, zipfile.ZipFile(output, "w") as copy:
        for info in original.infolist():
            content = original.read(info)
            if info.filename == METADATA_MEMBER:
                metadata = json.loads(content) | {METADATA_KEY: _input_note(model)}
                content = json.dumps(metadata, indent=1).encode()
            copy.writestr(info, content)
    return output.getvalue()


def npz_bytes(model: saved_models.SavedModel) -> bytes:
    """The network as one ``.npz``: its architecture as JSON text and its kernels and biases, float32."""
    network = model.network
    arrays = {
        saved_models.EXPORT_ARCHITECTURE_KEY: np.array(saved_models.architecture_json(network.architecture))
    }
    for index, (kernel, bias) in enumerate(zip(network.weights, network.biases)):
        arrays[saved_models.EXPORT_KERNEL_KEY.format(index)] = kernel
        arrays[saved_models.EXPORT_BIAS_KEY.format(index)] = bias
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def model_card(model: saved_models.SavedModel) -> str:
    """The model card in Markdown: architecture, origin, figures, calibration and preprocessing."""
    card, metrics = model.card, model.metrics
    architecture = card.architecture
    name = card.model_id if is_custom(card.model_id) else f"Model {card.model_id}"
    lines = [
        f"# {name}: {architecture.summary}",
        "",
        "A handwritten-digit classifier exported from DigitDraw.",
        "",
        "## Architecture",
        "",
        f"- Layers: `{architecture.summary}` ({ACTIVATION_LABELS[architecture.hidden_activation]} hidden "
        f"layers), {architecture.parameter_count:,} weights and biases.",
        f"- Input: 28x28 images; inside the network each pixel p is read as {architecture.input_scale:g} x p "
        f"+ {architecture.input_offset:g}.",
        "- Output: ten softmax probabilities, one per digit 0-9.",
        "",
        "## Where it came from",
        "",
    ]
    if card.opened is not None:
        opened = card.opened
        lines += [
            f"- Opened from `{opened.file_name}` (sha256 `{opened.file_sha256[:16]}…`, "
            f"{opened.file_format}) on "
            f"{card.trained_at}; not trained by DigitDraw, so its training recipe and data are its author's.",
            f"- Its output was read as {opened.output}; its input as {opened.input_scaling}.",
            *(f"- {note}" for note in opened.notes),
        ]
    else:
        settings = ", ".join(
            f"{key} {value}" for key, value in sorted(card.config.items()) if value is not None
        )
        lines += [
            f"- Trained by DigitDraw on {card.trained_at}: {card.epochs_run} epochs, the weights of epoch "
            f"{card.best_epoch} kept, in {card.training_seconds:.0f} s (seed {card.seed}).",
            f"- Data: MNIST (sha256 `{card.data.sha256[:16]}…`), every image through the preprocessing "
            "below; "
            + ", ".join(
                f"{split} images {r.start}-{r.stop} of {r.source}" for split, r in card.data.splits.items()
            )
            + ".",
            f"- Settings: {settings}.",
        ]
    lines += [
        "",
        "## How well it reads",
        "",
        "| Set | Accuracy |",
        "|---|---|",
        f"| MNIST test (10,000) | {_percent(metrics.accuracy.get('test'))} |",
        f"| Digits drawn from MNIST test ({card.data.drawn_size:,}) | "
        f"{_percent(metrics.accuracy.get('drawn'))} |",
        f"| MNIST validation | {_percent(metrics.accuracy.get('validation'))} |",
    ]
    calibration = model.calibration
    if calibration is not None:
        for name_of_set in ("scanned", "hershey"):
            share = calibration.reliability[name_of_set]["raw"].share_right()
            lines.append(f"| Other hands: {name_of_set} | {_percent(share)} |")
        ece = calibration.reliability["test"]
        lines += [
            "",
            "## Calibration",
            "",
            f"- Temperature {calibration.temperature:.3f}; expected calibration error on MNIST test "
            f"{ece['raw'].ece:.2%} before, {ece['calibrated'].ece:.2%} after. The exported file gives the "
            "uncalibrated probabilities: divide the logits by the temperature for the calibrated ones.",
            f'- "Not a digit" below a digit score of {calibration.novelty.threshold:.3f} '
            f"({calibration.novelty.method}); the score's arrays are not part of this export.",
        ]
    else:
        lines += ["", "## Calibration", "", "- Not calibrated: its probabilities are the network's own."]
    lines += [
        "",
        "## The preprocessing its input needs",
        "",
        f"{PREPROCESSING}. Raw MNIST digits or canvas drawings without it give worse answers.",
        "",
        "```python",
        "import digitdraw, keras, numpy as np",
        "image = digitdraw.to_mnist(drawing)  # (28, 28) float32 from 0 to 1, or None for an empty drawing",
        f'model = keras.saving.load_model("{file_stem(card.model_id)}.keras")',
        "probabilities = model.predict(image[None])[0]",
        "```",
        "",
    ]
    return "\n".join(lines)


def export(model: saved_models.SavedModel, file_format: ExportFormat, out: Path) -> tuple[Path, Path]:
    """Write the network to ``out`` in ``file_format`` and its model card beside it (``.md``), each
    atomically; the two paths."""
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"expected a format in {list(EXPORT_FORMATS)}, got {file_format!r}")
    out = Path(out)
    card_path = out.with_suffix(".md")
    if out.suffix.lower() == ".md":
        raise ValueError(f"expected a network's file other than its model card's, {card_path.name}")
    content = keras_bytes(model) if file_format == "keras" else npz_bytes(model)
    with atomic_write(out) as handle:
        handle.write(content)
    with atomic_write(card_path, "w") as handle:
        handle.write(model_card(model))
    return out, card_path
