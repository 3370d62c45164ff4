"""Plotly figures and display images for the app: pure functions of saved numbers.

Kept apart from the pages so that each page only picks what to show, and so
that the figures can be tested without a browser. One palette and one layout
keep every page consistent.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import plotly.graph_objects as go

from digitdraw import inside
from digitdraw.models import NUM_CLASSES, REGISTRY
from digitdraw.saved_models import History

# One colour per model, stable across pages (Okabe-Ito, readable by colour-blind users).
MODEL_COLOURS = {1: "#E69F00", 2: "#56B4E9", 3: "#009E73", 4: "#0072B2", 5: "#CC79A7"}
SPLIT_COLOURS = {"train": "#0072B2", "validation": "#E69F00", "test": "#009E73"}
SPLIT_DASHES = {"train": "solid", "validation": "dash", "test": "dot"}
ACCENT = "#0072B2"
MUTED = "#B8C4D0"


# One layout for every chart. Streamlit's own chart theme supplies colours and fonts, so no
# plotly template is named: applying one costs milliseconds of copying per figure.
_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    "font": {"size": 13},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
}


def _layout(figure: go.Figure, height: int = 360, **extra) -> go.Figure:
    figure.update_layout(**{**_LAYOUT, "height": height, **extra})
    return figure


def probability_bars(probabilities: np.ndarray, title: str = "") -> str:
    """Ten bars, one per digit, the predicted digit highlighted, as a small piece of HTML for ``st.html``.

    This chart is redrawn on every stroke. As HTML it costs the server about
    25 microseconds and the browser one layout; a plotly figure, even given as a
    dict, is rebuilt and validated by plotly on every call (about 7 ms per
    stroke on this project's machine) and a Vega-Lite spec has its data turned
    into an Arrow table (about 4 ms), before either is drawn by a chart library.
    """
    probabilities = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    best = int(np.argmax(probabilities))
    summary = ", ".join(f"{digit}: {p:.0%}" for digit, p in enumerate(probabilities))
    bars, labels = [], []
    for digit, probability in enumerate(probabilities):
        colour = ACCENT if digit == best else MUTED
        text = f"{probability:.0%}" if probability >= 0.01 else ""
        bars.append(
            '<div style="flex:1;display:flex;flex-direction:column;justify-content:flex-end;'
            'align-items:center;height:100%">'
            f'<span style="font-size:0.75rem;opacity:0.75">{text}</span>'
            f'<div title="digit {digit}: {probability:.2%}" style="width:100%;'
            f'height:{probability * _BAR_HEIGHT:.1f}px;background:{colour};border-radius:3px 3px 0 0"></div>'
            "</div>"
        )
        weight = "700" if digit == best else "400"
        labels.append(f'<div style="flex:1;text-align:center;font-weight:{weight}">{digit}</div>')
    row = "display:flex;gap:0.4rem"
    heading = f'<div style="font-weight:600;margin-bottom:0.5rem">{html.escape(title)}</div>' if title else ""
    return (
        f'<div role="img" aria-label="{html.escape(title or "Probabilities")}: {summary}">{heading}'
        f'<div style="{row};align-items:flex-end;height:{_BAR_HEIGHT + 20}px">{"".join(bars)}</div>'
        f'<div style="{row};border-top:1px solid {MUTED};padding-top:0.25rem;font-size:0.85rem">'
        f"{''.join(labels)}</div></div>"
    )


# The stroke timeline shows at most this many of the latest strokes.
TIMELINE_STROKES = 12


def stroke_timeline(
    answers: Sequence[Mapping[object, tuple[int, float]]], chosen: object, first_stroke: int = 1
) -> str:
    """Every model's answer after each stroke of the current drawing, as a small HTML table for ``st.html``.

    ``answers`` holds one entry per stroke: model id -> (digit, confidence);
    ``first_stroke`` is the number of its first entry, for a caller that keeps only the latest. A
    cell's shade is the confidence; a cell whose digit is the model's latest
    answer is bold, so the stroke where a model "got it" and kept it shows. Plain
    HTML because it is redrawn on every stroke (see ``probability_bars``): about
    0.07 ms for 12 strokes of five models (``benchmarks/inside.py``, README).
    """
    if not answers:
        return ""
    shown = list(answers)[-TIMELINE_STROKES:]
    first = first_stroke + len(answers) - len(shown)
    cell = "padding:0.15rem 0.4rem;min-width:1.7rem;text-align:center;border-radius:3px"
    head = "".join(
        f'<th style="{cell};font-weight:400;opacity:0.7">{first + i}</th>' for i in range(len(shown))
    )
    rows = []
    for model_id in answers[-1]:
        latest = answers[-1][model_id][0]
        cells = []
        for stroke in shown:
            if model_id not in stroke:
                cells.append(f'<td style="{cell}">–</td>')
                continue
            digit, confidence = stroke[model_id]
            weight = 700 if digit == latest else 400
            shade = f"rgba(0,114,178,{0.1 + 0.5 * min(max(float(confidence), 0.0), 1.0):.2f})"
            style = f"{cell};background:{shade};font-weight:{weight}"
            cells.append(f'<td title="{confidence:.0%}" style="{style}">{digit}</td>')
        mark = " ◀" if model_id == chosen else ""
        name = html.escape(f"Model {model_id}{mark}")
        rows.append(
            f'<tr><th style="{cell};text-align:left;white-space:nowrap">{name}</th>{"".join(cells)}</tr>'
        )
    return (
        '<div style="overflow-x:auto">'
        '<table style="border-collapse:separate;border-spacing:3px;font-size:0.9rem">'
        f'<thead><tr><th style="{cell};text-align:left;font-weight:400;opacity:0.7">Stroke</th>'
        f"{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<div style="font-size:0.8rem;opacity:0.7">Darker: surer. Bold: the answer it has now.</div></div>'
    )


# The tallest bar's height in CSS pixels, for a probability of 1.
_BAR_HEIGHT = 160


def training_curves(history: History, metric: str, model_id: int) -> go.Figure:
    """Training, validation and test curves of one model, with the study's numbers for reference."""
    figure = go.Figure()
    for split in ("train", "validation", "test"):
        figure.add_trace(
            go.Scatter(
                x=history.epoch,
                y=history.curve(split, metric),
                name=split,
                mode="lines+markers",
                line={"color": SPLIT_COLOURS[split], "dash": SPLIT_DASHES[split]},
            )
        )
    spec = REGISTRY[model_id]
    if metric == "accuracy":
        for label, value, split in (
            ("study: training", spec.study_train_accuracy, "train"),
            ("study: validation", spec.study_validation_accuracy, "validation"),
        ):
            if value is not None:
                figure.add_hline(
                    y=value / 100,
                    line={"color": SPLIT_COLOURS[split], "width": 1, "dash": "longdash"},
                    annotation_text=label,
                    annotation_position="bottom right",
                    opacity=0.6,
                )
    figure.add_vline(
        x=history.best_epoch,
        line={"color": "#888", "width": 1, "dash": "dot"},
        annotation_text="epoch kept",
        annotation_position="bottom left",
    )
    return _axes(figure, metric)


def overlaid_curves(histories: Mapping[int, History], metric: str, split: str) -> go.Figure:
    """One split's curve for several models on one chart."""
    figure = go.Figure()
    for model_id, history in histories.items():
        figure.add_trace(
            go.Scatter(
                x=history.epoch,
                y=history.curve(split, metric),
                name=REGISTRY[model_id].name,
                mode="lines",
                line={"color": MODEL_COLOURS[model_id], "width": 2.5},
            )
        )
    return _axes(figure, metric)


def _axes(figure: go.Figure, metric: str) -> go.Figure:
    figure.update_xaxes(title="epoch")
    if metric == "accuracy":
        figure.update_yaxes(title="accuracy", tickformat=".1%")
    else:
        figure.update_yaxes(title="cross-entropy loss", type="log")
    return _layout(figure, height=420, hovermode="x unified")


def confusion_heatmap(matrix: np.ndarray, normalise: bool) -> go.Figure:
    """A 10x10 heatmap, rows true digit and columns predicted, as counts or row shares."""
    matrix = np.asarray(matrix, dtype=float)
    if normalise:
        totals = matrix.sum(axis=1, keepdims=True)
        values = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        text = [[f"{v:.1%}" if v >= 0.001 else "" for v in row] for row in values]
        hover = "true %{y}, predicted %{x}: %{z:.2%}<extra></extra>"
    else:
        values = matrix
        text = [[f"{int(v)}" if v else "" for v in row] for row in values]
        hover = "true %{y}, predicted %{x}: %{z:.0f} images<extra></extra>"
    # A square-root colour scale lets the few errors show beside the large diagonal.
    figure = go.Figure(
        go.Heatmap(
            z=np.sqrt(values),
            x=[str(d) for d in range(NUM_CLASSES)],
            y=[str(d) for d in range(NUM_CLASSES)],
            text=text,
            texttemplate="%{text}",
            customdata=values,
            hovertemplate=hover.replace("%{z", "%{customdata"),
            colorscale="Blues",
            showscale=False,
        )
    )
    figure.update_xaxes(title="predicted digit", side="top", type="category")
    figure.update_yaxes(title="true digit", autorange="reversed", type="category", scaleanchor="x")
    return _layout(figure, height=520)


def ranking_chart(rows: Sequence[Mapping]) -> go.Figure:
    """Horizontal bars of MNIST test and drawn-digit accuracy, best model on top."""
    ordered = sorted(rows, key=lambda row: row["test"])
    names = [f"Model {row['model_id']} ({row['architecture']}, {row['activation']})" for row in ordered]
    figure = go.Figure()
    for key, label, colour in (("test", "MNIST test", ACCENT), ("drawn", "drawn digits", "#E69F00")):
        figure.add_trace(
            go.Bar(
                y=names,
                x=[row[key] for row in ordered],
                name=label,
                orientation="h",
                marker_color=colour,
                text=[f"{row[key]:.2%}" for row in ordered],
                # Inside each bar, in white: readable on both colours and never cut off.
                textposition="inside",
                insidetextanchor="end",
                textfont={"color": "white"},
            )
        )
    lowest = min(min(row["test"], row["drawn"]) for row in rows)
    figure.update_xaxes(range=[max(0.0, lowest - 0.03), 1.0], tickformat=".0%", title="accuracy")
    return _layout(figure, height=380, barmode="group")


def pixel_grid(image: np.ndarray, cell: int = 10) -> np.ndarray:
    """An enlarged uint8 copy of a small image, each pixel a square with a faint grid between them."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    large = cv2.resize(
        (image * 255).astype(np.uint8), None, fx=cell, fy=cell, interpolation=cv2.INTER_NEAREST
    )
    large[::cell, :] = np.maximum(large[::cell, :], 60)
    large[:, ::cell] = np.maximum(large[:, ::cell], 60)
    return large


def display_image(image: np.ndarray, size: int = 140) -> np.ndarray:
    """A step image scaled to fit a black ``size`` x ``size`` square (uint8), so that steps line up."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    height, width = image.shape
    scale = size / max(height, width)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    square = np.zeros((size, size), np.uint8)
    top, left = (size - new_height) // 2, (size - new_width) // 2
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    square[top : top + new_height, left : left + new_width] = (resized * 255).astype(np.uint8)
    return square


def image_row(images: Sequence[tuple[np.ndarray, str]], width: int) -> str:
    """Small uint8 images (grayscale or RGB) with captions, side by side, wrapping, as HTML for ``st.html``.

    The images travel inside the page as PNG data: for the preprocessing steps,
    redrawn on every stroke, that is five encodings of a few hundred bytes each
    instead of five media files the browser must then fetch one by one.
    """
    figures = []
    for image, caption in images:
        image = np.asarray(image)
        colour = image.ndim == 3 and image.shape[2] == 3
        if image.dtype != np.uint8 or not (image.ndim == 2 or colour):
            raise ValueError(
                f"image_row takes 2-D or RGB uint8 images, got {image.dtype} of shape {image.shape}"
            )
        encoded = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if colour else image
        png = base64.b64encode(cv2.imencode(".png", encoded)[1].tobytes()).decode("ascii")
        text = html.escape(caption)
        figures.append(
            f'<figure style="margin:0;width:{width}px;text-align:center">'
            f'<img src="data:image/png;base64,{png}" alt="{text}" width="{width}" height="{width}" '
            'style="display:block;image-rendering:pixelated;border-radius:4px">'
            '<figcaption style="font-size:0.8rem;opacity:0.7;margin-top:0.25rem">'
            f"{text}</figcaption></figure>"
        )
    return f'<div style="display:flex;flex-wrap:wrap;gap:0.75rem">{"".join(figures)}</div>'


INK_GREY = 70  # How much darker than the paper full ink is drawn under a map.


# A signed map's scale is this percentile of its non-zero magnitudes: the pixels above it are at full colour.
MAP_PERCENTILE = 95


def map_scale(values: np.ndarray) -> float:
    """A symmetric scale for a signed map: the ``MAP_PERCENTILE``th percentile of its non-zero magnitudes,
    so that a few extreme pixels do not leave the rest of the map pale (they are drawn at full colour)."""
    magnitudes = np.abs(np.asarray(values, dtype=np.float32))
    magnitudes = magnitudes[magnitudes > 0]
    return float(np.percentile(magnitudes, MAP_PERCENTILE)) if magnitudes.size else 1.0


def overlay(image: np.ndarray, values: np.ndarray, cell: int = 5, scale: float = 1.0) -> np.ndarray:
    """A signed 28x28 map drawn over the input it explains, as enlarged RGB uint8: the input in light
    grey on white, the map divided by ``scale`` (``map_scale`` suits attribution maps) on the diverging
    red-blue scale (-1..1) multiplied over it."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    values = np.asarray(values, dtype=np.float32) / np.float32(scale)
    if image.shape != values.shape or image.ndim != 2:
        raise ValueError(
            f"expected an image and a map of one 2-D shape, got {image.shape} and {values.shape}"
        )
    grey = 255.0 - INK_GREY * image  # Ink light enough that red and blue still read over it.
    coloured = grey[..., None] * inside.diverging_colours(values) / 255.0
    return np.kron(np.rint(coloured).astype(np.uint8), np.ones((cell, cell, 1), np.uint8))


def signed_picture(values: np.ndarray, cell: int = 5, scale: float = 1.0) -> np.ndarray:
    """A signed map alone, divided by ``scale``, on the diverging red-blue scale (-1..1), as RGB uint8."""
    scaled = np.asarray(values, dtype=np.float32) / np.float32(scale)
    coloured = np.rint(inside.diverging_colours(scaled)).astype(np.uint8)
    return np.kron(coloured, np.ones((cell, cell, 1), np.uint8))


def answer_table(rows: Sequence[tuple[str, Sequence[str]]], header: Sequence[str]) -> str:
    """A small plain HTML table (escaped), for ``st.html``: cheaper than a dataframe widget."""
    head = "".join(
        f'<th style="text-align:left;padding:0.15rem 0.4rem">{html.escape(h)}</th>' for h in header
    )
    body = []
    for name, cells in rows:
        tds = "".join(
            f'<td style="padding:0.15rem 0.4rem;white-space:nowrap">{html.escape(c)}</td>' for c in cells
        )
        body.append(f'<tr><td style="padding:0.15rem 0.4rem">{html.escape(name)}</td>{tds}</tr>')
    return (
        '<div style="overflow-x:auto"><table style="border-collapse:collapse;font-size:0.85rem">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


# Plotly's "Blues" scale at its two ends, for cells drawn as HTML to match the plotly unit grids.
_BLUES_LOW, _BLUES_HIGH = np.array([247, 251, 255]), np.array([8, 48, 107])
_CELL = 30  # A unit's cell in CSS pixels, as in the plotly unit grids.
# The hover card of a first-layer unit: hidden until its cell is hovered (or tapped, on a phone).
_UNIT_CARD_STYLE = """<style>
.dd-units{display:grid;gap:2px;margin-bottom:0.5rem}
.dd-unit{position:relative;aspect-ratio:1;border-radius:2px;display:flex;align-items:center;
justify-content:center;color:#D55E00;font-size:18px;line-height:1;cursor:default}
.dd-unit .dd-card{display:none;position:absolute;z-index:20;top:100%;left:50%;transform:translateX(-50%);
background:#fff;color:#1F2933;border:1px solid #B8C4D0;border-radius:6px;padding:6px;
box-shadow:0 2px 8px rgba(0,0,0,.2);font-size:0.75rem;text-align:center;white-space:nowrap}
.dd-unit:hover .dd-card{display:block}
.dd-card img{display:block;margin:0 auto 4px;image-rendering:pixelated}
</style>"""


def first_layer_grid(
    activations: np.ndarray,
    contributions: np.ndarray,
    highlighted: Sequence[int],
    target: int,
    scale_max: float,
    weights: np.ndarray,
) -> str:
    """The first hidden layer's units as a grid of cells like ``unit_grid``, as HTML for ``st.html``;
    hovering (or tapping) a unit shows its number, activation, push and its 28x28 incoming weights.

    HTML rather than plotly because a plotly tooltip can hold only text. The
    weight pictures share one red-blue scale across the layer (its largest 0.5%
    of weights drawn at full colour), as PNG data in
    the page (about 1 KB each), shown by CSS alone, with no script.
    """
    activations = np.asarray(activations, dtype=float)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 3 or len(weights) != len(activations) or len(contributions) != len(activations):
        raise ValueError(
            f"expected one weight picture and one contribution per unit, got {weights.shape} for "
            f"{len(activations)} units"
        )
    columns = int(np.ceil(np.sqrt(len(activations))))
    # One scale for the layer, set below its few largest weights so that the rest do not fade to white.
    scale = float(np.percentile(np.abs(weights), 99.5)) or float(np.abs(weights).max()) or 1.0
    pictures = np.rint(inside.diverging_colours(weights / scale)).astype(np.uint8)
    shades = np.clip(activations / max(scale_max, 1e-6), 0.0, 1.0)
    cells = []
    for unit, (value, push, shade, picture) in enumerate(zip(activations, contributions, shades, pictures)):
        colour = np.rint(_BLUES_LOW + shade * (_BLUES_HIGH - _BLUES_LOW)).astype(int)
        enlarged = np.kron(picture, np.ones((4, 4, 1), np.uint8))
        png = base64.b64encode(cv2.imencode(".png", cv2.cvtColor(enlarged, cv2.COLOR_RGB2BGR))[1]).decode()
        star = "★" if unit in highlighted else ""
        cells.append(
            f'<div class="dd-unit" style="background:rgb({colour[0]},{colour[1]},{colour[2]})">{star}'
            f'<div class="dd-card"><img src="data:image/png;base64,{png}" width="112" height="112" '
            f'alt="unit {unit} incoming weights">unit {unit}<br>activation {value:.3f}<br>'
            f"pushes {int(target)} by {float(push):+.2f}</div></div>"
        )
    return (
        f'{_UNIT_CARD_STYLE}<div class="dd-units" style="grid-template-columns:repeat({columns},{_CELL}px)">'
        f"{''.join(cells)}</div>"
    )


def unit_grid(
    activations: np.ndarray,
    contributions: np.ndarray,
    highlighted: Sequence[int],
    target: int,
    scale_max: float,
) -> go.Figure:
    """A layer's units as a grid of cells coloured by activation, the strongest supporters of the
    answer starred; hovering a cell gives the unit's number, activation and push towards the answer."""
    units = len(activations)
    columns = int(np.ceil(np.sqrt(units)))
    rows = int(np.ceil(units / columns))
    padded = np.full(rows * columns, np.nan)
    padded[:units] = activations
    pushed = np.full(rows * columns, np.nan)
    pushed[:units] = contributions
    numbers = np.arange(rows * columns)
    marks = np.array(["★" if unit in highlighted else "" for unit in range(rows * columns)])
    figure = go.Figure(
        go.Heatmap(
            z=padded.reshape(rows, columns),
            customdata=np.dstack([numbers.reshape(rows, columns), pushed.reshape(rows, columns)]),
            text=marks.reshape(rows, columns),
            texttemplate="%{text}",
            # Vermillion reads on white and on dark blue alike.
            textfont={"color": "#D55E00", "size": 18},
            hovertemplate=(
                "unit %{customdata[0]}<br>activation %{z:.3f}<br>"
                f"pushes {target} by %{{customdata[1]:+.2f}}<extra></extra>"
            ),
            colorscale="Blues",
            zmin=0.0,
            zmax=max(scale_max, 1e-6),
            showscale=False,
            xgap=2,
            ygap=2,
        )
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return _layout(figure, height=40 + 34 * rows, margin={"l": 0, "r": 0, "t": 0, "b": 0})
