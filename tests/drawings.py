"""Digits drawn with OpenCV lines and arcs on a 280x280 canvas, as the app's canvas returns them."""

from __future__ import annotations

import base64
import hashlib

import cv2
import numpy as np

CANVAS = 280


def blank_canvas() -> np.ndarray:
    """A transparent 280x280 RGBA canvas, as the app's canvas returns before drawing."""
    return np.zeros((CANVAS, CANVAS, 4), np.uint8)


def _ink(canvas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    canvas = canvas.copy()
    canvas[:, :, 3] = np.maximum(canvas[:, :, 3], mask)  # Anti-aliased edges stay partly transparent.
    return canvas


def draw_digit(
    digit: int, stroke: int = 18, scale: float = 1.0, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Draw a 0, 1, 4 or 7 with OpenCV lines and arcs, black ink on a transparent canvas."""
    mask = np.zeros((CANVAS, CANVAS), np.uint8)
    cx, cy = CANVAS // 2 + offset[0], CANVAS // 2 + offset[1]

    def point(x: float, y: float) -> tuple[int, int]:
        return int(cx + x * scale), int(cy + y * scale)

    if digit == 0:
        axes = (int(55 * scale), int(85 * scale))
        cv2.ellipse(mask, (cx, cy), axes, 0, 0, 360, 255, stroke, cv2.LINE_AA)
    elif digit == 1:
        cv2.line(mask, point(-20, -70), point(5, -95), 255, stroke, cv2.LINE_AA)
        cv2.line(mask, point(5, -95), point(5, 95), 255, stroke, cv2.LINE_AA)
    elif digit == 7:
        cv2.line(mask, point(-60, -85), point(60, -85), 255, stroke, cv2.LINE_AA)
        cv2.line(mask, point(60, -85), point(-10, 95), 255, stroke, cv2.LINE_AA)
    elif digit == 4:
        cv2.line(mask, point(20, -95), point(-60, 30), 255, stroke, cv2.LINE_AA)
        cv2.line(mask, point(-60, 30), point(60, 30), 255, stroke, cv2.LINE_AA)
        cv2.line(mask, point(30, -40), point(30, 95), 255, stroke, cv2.LINE_AA)
    else:
        raise ValueError(f"no drawing for {digit}")
    return _ink(blank_canvas(), mask)


def canvas_value(image: np.ndarray | None, width: int, height: int, marker: dict) -> dict:
    """What the canvas component reports for a drawing on a ``width`` by ``height`` canvas (the drawing in
    its top left corner, scaled down if it is larger): its objects, the ``marker`` of its Clears it was
    given and one stroke standing for all, and its picture as a PNG data URL; no stroke for None or a
    drawing without ink."""
    if image is None or not image[..., 3].any():
        return {"drawing": {"raw": {"objects": [marker]}, "data": None}}
    scale = min(1.0, width / image.shape[1], height / image.shape[0])
    if scale < 1:  # Drawn smaller, as a person would on a smaller canvas.
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    picture = np.zeros((height, width, 4), np.uint8)
    picture[: image.shape[0], : image.shape[1]] = image
    png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGBA2BGRA))[1].tobytes()
    # The stroke is told apart by the picture, as the canvas's strokes are by their paths.
    stroke = {"type": "Path", "path": hashlib.sha256(png).hexdigest()}
    data = "data:image/png;base64," + base64.b64encode(png).decode()
    return {"drawing": {"raw": {"objects": [marker, stroke]}, "data": data}}


def clear_marker_of(initial_drawing: dict) -> dict:
    """The canvas's mark of its Clears in the initial drawing it was given: the hidden object."""
    return next(item for item in initial_drawing["objects"] if item.get("visible") is False)
