"""Scores for a trained network: accuracy, loss, confusion matrix and per-class precision/recall/F1.

Everything here works on predicted probabilities from the NumPy forward pass,
so scoring 10,000 images takes milliseconds and needs no TensorFlow; the
same functions serve training (per-epoch curves), the saved metrics and the
app's confusion-matrix page.
"""

from __future__ import annotations

import numpy as np

from digitdraw.serving.networks import NUM_CLASSES, Network


def loss_and_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of predicted probabilities against integer labels."""
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    return loss, accuracy


# A normal distribution's two-sided 95% point: a measured share lies within this many standard errors of
# the true one 95 times in 100.
Z_95 = 1.96


def accuracy_margin(count: int) -> float:
    """How far an accuracy measured on ``count`` items may be from the true one, at most, 95 times in 100:
    the normal approximation's half-width where it is widest (an accuracy of one half)."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ValueError(f"an accuracy is measured on at least one item, got {count!r}")
    return Z_95 * 0.5 / float(np.sqrt(count))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """A 10x10 count matrix: row = true digit, column = predicted digit."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> dict[str, list[float]]:
    """Precision, recall, F1 and support per digit, from a confusion matrix."""
    correct = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, actual, out=np.zeros_like(correct), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(correct), where=total > 0)
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": actual.astype(int).tolist(),
    }


def most_confused_pairs(matrix: np.ndarray, count: int = 5) -> list[tuple[int, int, int]]:
    """The off-diagonal cells with the most images, as (true, predicted, images)."""
    off_diagonal = np.array(matrix, copy=True)
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None)[::-1][:count]
    cells = [np.unravel_index(index, off_diagonal.shape) for index in order]
    return [(int(t), int(p), int(off_diagonal[t, p])) for t, p in cells if off_diagonal[t, p] > 0]


def images_in_cell(
    labels: np.ndarray, predictions: np.ndarray, true_digit: int, predicted: int
) -> np.ndarray:
    """Indices of the images of one confusion-matrix cell: true ``true_digit``, read as ``predicted``."""
    return np.flatnonzero((np.asarray(labels) == true_digit) & (np.asarray(predictions) == predicted))


def score(network: Network, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Loss and accuracy of a network on one split."""
    loss, accuracy = loss_and_accuracy(network.predict_proba(images), labels)
    return {"loss": loss, "accuracy": accuracy}


def labelled_set_report(
    network: Network | None,
    images: np.ndarray | None,
    labels: np.ndarray,
    probabilities: np.ndarray | None = None,
) -> dict:
    """Confusion matrix, per-class scores and every prediction on a labelled set (keys of ``Metrics``), from
    the network's ``probabilities`` on the images when they are at hand already."""
    if probabilities is None:
        probabilities = network.predict_proba(images)
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions)
    return {
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class_scores(matrix),
        "test_predictions": predictions.astype(int).tolist(),
    }
