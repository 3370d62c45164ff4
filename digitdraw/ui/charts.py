"""Plotly figures and display images for the app: pure functions of saved numbers.

Kept apart from the pages so that each page only picks what to show, and so
that the figures can be tested without a browser. One palette and one layout
keep every page consistent.
"""

from __future__ import annotations

import base64
import html
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import plotly.graph_objects as go

from digitdraw.explaining import inside
from digitdraw.serving.networks import NUM_CLASSES, ModelId, ModelSpec
from digitdraw.serving.saved_models import History, ReliabilityRecord

# One colour per model, stable across pages (Okabe-Ito, readable by colour-blind users). The CNN beyond
# the study is black: vermillion sat too close to model 1's orange in the reliability diagram.
MODEL_COLOURS = {1: "#E69F00", 2: "#56B4E9", 3: "#009E73", 4: "#0072B2", 5: "#CC79A7", 6: "#000000"}
# Networks people trained: the rest of the colour-blind-safe palette, chosen by name, so a network
# keeps its colour from chart to chart.
CUSTOM_COLOURS = ("#D55E00", "#F0E442", "#999999")
SPLIT_COLOURS = {"train": "#0072B2", "validation": "#E69F00", "test": "#009E73"}
SPLIT_DASHES = {"train": "solid", "validation": "dash", "test": "dot"}
ACCENT = "#0072B2"
DOUBTFUL = "#D55E00"  # A digit that keeps a number from being sure: vermillion, apart from the accent.
BAR_HEIGHT = 26  # A bar of a horizontal bar chart, in pixels: room for its label at 13 px.
# The reliability diagram: a bin of fewer digits has too uncertain a share right (±11 points at 95% for
# 20) to draw a line through; such markers, and every model but the highlighted one, are drawn faintly.
FEW_IN_BIN = 20
FAINT = 0.3
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
    return (
        f'<div role="img" aria-label="{html.escape(title or "Probabilities")}: {summary}">{_heading(title)}'
        f'<div style="{row};align-items:flex-end;height:{_BAR_HEIGHT + 20}px">{"".join(bars)}</div>'
        f'<div style="{row};border-top:1px solid {MUTED};padding-top:0.25rem;font-size:0.85rem">'
        f"{''.join(labels)}</div></div>"
    )


def _heading(title: str) -> str:
    """A small bold line above a piece of HTML, or nothing without a title."""
    return f'<div style="font-weight:600;margin-bottom:0.5rem">{html.escape(title)}</div>' if title else ""


def model_answers(rows: Sequence[tuple[str, int | None, float | None]]) -> str:
    """Each model's name, its digit and its confidence as a bar, as a small HTML table for ``st.html``.

    ``rows`` holds (name, digit, confidence), digit and confidence None for a model
    without an answer. Redrawn on every stroke (see ``probability_bars``): a
    dataframe widget here cost about 1 ms per stroke in pandas and Arrow alone
    (p95 6 ms on a busy machine), and it is one more element for the browser to lay out.
    """
    cell = "padding:0.2rem 0.5rem;border-bottom:1px solid #E6EAF0"
    body = []
    for name, digit, confidence in rows:
        if digit is None or confidence is None:
            answer = f'<td style="{cell}" colspan="2">unavailable</td>'
        else:
            share = min(max(float(confidence), 0.0), 1.0)
            bar = (
                f'<div style="width:5rem;height:0.5rem;background:#E6EAF0;border-radius:3px">'
                f'<div style="width:{share * 100:.1f}%;height:100%;background:{ACCENT};border-radius:3px">'
                "</div></div>"
            )
            answer = (
                f'<td style="{cell};font-weight:700;text-align:center">{int(digit)}</td>'
                f'<td style="{cell}"><div style="display:flex;align-items:center;gap:0.5rem">{bar}'
                f"<span>{share:.1%}</span></div></td>"
            )
        body.append(f'<tr><td style="{cell}">{html.escape(name)}</td>{answer}</tr>')
    head = "".join(
        f'<th style="{cell};text-align:left;font-weight:600">{h}</th>'
        for h in ("Model", "Reads", "Confidence")
    )
    return (
        '<div style="overflow-x:auto;margin-bottom:1rem">'
        '<table style="border-collapse:collapse;font-size:0.9rem">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


# Shades of Streamlit's own alerts in the light theme, so that a note drawn as HTML reads as st.success
# or st.warning does beside them; the text keeps the page's colour, as theirs does.
NOTE_SHADES = {"agree": "#F1FBF5", "disagree": "#FFF8E6"}


def section_heading(title: str) -> str:
    """A section heading, as ``st.subheader`` shows it, as HTML for ``st.html``."""
    # A heading inside st.html gets only the browser's defaults: these are st.subheader's sizes.
    return (
        '<h3 style="font-size:1.75rem;font-weight:600;line-height:1.2;margin:0;padding:0.75rem 0 1rem">'
        f"{html.escape(title, quote=False)}</h3>"
    )


def note(text: str, shade: str) -> str:
    """A short note on a shaded panel (``NOTE_SHADES``: "agree" or "disagree"), as HTML for ``st.html``;
    ``text`` is HTML, escaped by the caller."""
    if shade not in NOTE_SHADES:
        raise ValueError(f"a note's shade is one of {sorted(NOTE_SHADES)}, got {shade!r}")
    return (
        f'<div style="background:{NOTE_SHADES[shade]};padding:1rem;border-radius:0.5rem;'
        f'margin-bottom:1rem">{text}</div>'
    )


# The stroke timeline shows at most this many of the latest strokes.
TIMELINE_STROKES = 12


def stroke_timeline(
    answers: Sequence[Mapping[object, tuple[int, float]]],
    chosen: object,
    first_stroke: int = 1,
    title: str = "",
) -> str:
    """Every model's answer after each stroke of the current drawing, as a small HTML table for ``st.html``.

    ``answers`` holds one entry per stroke: model id -> (digit, confidence);
    ``first_stroke`` is the number of its first entry, for a caller that keeps only the latest;
    ``title``, if given, is shown above the table. A
    cell's shade is the confidence; a cell whose digit is the model's latest
    answer is bold, so the stroke where a model "got it" and kept it shows. Plain
    HTML because it is redrawn on every stroke (see ``probability_bars``): about
    0.07 ms for 12 strokes of five models (``benchmarks/inside.py``, docs/performance.md).
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
        f'<div style="overflow-x:auto">{_heading(title)}'
        '<table style="border-collapse:separate;border-spacing:3px;font-size:0.9rem">'
        f'<thead><tr><th style="{cell};text-align:left;font-weight:400;opacity:0.7">Stroke</th>'
        f"{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<div style="font-size:0.8rem;opacity:0.7">Darker: surer. Bold: the answer it has now.</div></div>'
    )


# The tallest bar's height in CSS pixels, for a probability of 1.
_BAR_HEIGHT = 160


def model_colour(model_id: ModelId) -> str:
    """One model's line colour in every chart."""
    if model_id in MODEL_COLOURS:
        return MODEL_COLOURS[model_id]
    return CUSTOM_COLOURS[zlib.crc32(str(model_id).encode()) % len(CUSTOM_COLOURS)]


def training_curves(
    history: History, metric: str, spec: ModelSpec | None = None, height: int = 420, zoomed: bool = False
) -> go.Figure:
    """Training, validation and test curves of one model, with the study's numbers (when it is one of
    the study's, ``spec``) for reference; ``zoomed``, the value axis fitted to the later half of the epochs,
    where the curves part (a phone's way to zoom, whose charts do not zoom under a finger)."""
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
    if spec is not None and metric == "accuracy":
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
    if len(history.epoch) <= 12:
        figure.update_xaxes(dtick=1)  # Whole epochs only: no tick at 1.5.
    figure = _axes(figure, metric, height)
    if zoomed:
        later = [
            value
            for split in ("train", "validation", "test")
            for value in history.curve(split, metric)[len(history.epoch) // 2 :]
        ]
        low, high = min(later), max(later)
        margin = max(high - low, 1e-3) * 0.15
        figure.update_yaxes(range=[low - margin, high + margin], autorange=False)
    return figure


def overlaid_curves(
    histories: Mapping[ModelId, History], metric: str, split: str, labels: Mapping[ModelId, str]
) -> go.Figure:
    """One split's curve for several models on one chart, each named by ``labels``."""
    figure = go.Figure()
    for model_id, history in histories.items():
        figure.add_trace(
            go.Scatter(
                x=history.epoch,
                y=history.curve(split, metric),
                name=labels[model_id],
                mode="lines",
                line={"color": model_colour(model_id), "width": 2.5},
            )
        )
    return _axes(figure, metric)


def _axes(figure: go.Figure, metric: str, height: int = 420) -> go.Figure:
    figure.update_xaxes(title="epoch")
    if metric == "accuracy":
        figure.update_yaxes(title="accuracy", tickformat=".1%")
    else:
        # Plotly labels a log axis's minor ticks with their first digit alone ("3, 2, 0.1, 9, 8"): every
        # tick is given its whole value instead.
        ticks = log_ticks([v for trace in figure.data for v in (trace.y if trace.y is not None else ())])
        figure.update_yaxes(
            title="cross-entropy loss", type="log", tickvals=ticks, ticktext=[f"{tick:g}" for tick in ticks]
        )
    return _layout(figure, height=height, hovermode="x unified")


# A log axis labels at most about this many ticks; more would crowd a chart's height.
MAX_LOG_TICKS = 12


def log_ticks(values: Sequence[float | None]) -> list[float]:
    """Ticks for a log axis over the positive values: at 1, 2, 3 and 5 times the powers of ten within
    their range; at every digit times them where that gives fewer than three, at the powers alone where
    it gives more than ``MAX_LOG_TICKS``; and the nearest either side of the range."""
    positive = [float(v) for v in values if v is not None and np.isfinite(v) and v > 0]
    if not positive:
        return []
    low, high = min(positive), max(positive)
    powers = range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 2)

    def spaced(steps: Sequence[int]) -> tuple[list[float], list[float]]:
        ticks = [float(f"{step * 10.0**power:.12g}") for power in powers for step in steps]
        return ticks, [tick for tick in ticks if low <= tick <= high]

    ticks, inside = spaced((1, 2, 3, 5))
    if len(inside) < 3:
        ticks, inside = spaced(range(1, 10))
    elif len(inside) > MAX_LOG_TICKS:  # A range of many powers of ten: the powers alone.
        ticks, inside = spaced((1,))
    # Plotly shows no tick outside the axis's range: the nearest either side only serve a narrow one.
    below, above = [t for t in ticks if t < low], [t for t in ticks if t > high]
    return [*below[-1:], *inside, *above[:1]]


def _confusion_values(matrix: np.ndarray, normalise: bool) -> np.ndarray:
    """A confusion matrix's cells as counts, or as shares of each row's true digit."""
    matrix = np.asarray(matrix, dtype=float)
    if not normalise:
        return matrix
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def confusion_heatmap(matrix: np.ndarray, normalise: bool) -> go.Figure:
    """A 10x10 heatmap, rows true digit and columns predicted, as counts or row shares."""
    values = _confusion_values(matrix, normalise)
    if normalise:
        text = [[f"{v:.1%}" if v >= 0.001 else "" for v in row] for row in values]
        hover = "true %{y}, predicted %{x}: %{customdata:.2%}<extra></extra>"
    else:
        text = [[f"{int(v)}" if v else "" for v in row] for row in values]
        hover = "true %{y}, predicted %{x}: %{customdata:.0f} images<extra></extra>"
    # A square-root colour scale lets the few errors show beside the large diagonal.
    figure = go.Figure(
        go.Heatmap(
            z=np.sqrt(values),
            x=[str(d) for d in range(NUM_CLASSES)],
            y=[str(d) for d in range(NUM_CLASSES)],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hoverinfo="skip",
        )
    )
    # An invisible point at every cell's centre, which Plotly can select (a heatmap cannot): a click or a
    # tap on a cell selects it, and the point's hover says what the cell holds.
    digits = [str(d) for d in range(NUM_CLASSES)]
    figure.add_trace(
        go.Scatter(
            x=[predicted for _ in digits for predicted in digits],
            y=[true for true in digits for _ in digits],
            customdata=values.reshape(-1),
            mode="markers",
            marker={"size": 24, "opacity": 0},
            selected={"marker": {"opacity": 0}},
            unselected={"marker": {"opacity": 0}},
            hovertemplate=hover,
            showlegend=False,
        )
    )
    figure.update_xaxes(title="predicted digit", side="top", type="category")
    # Square cells; where the page is narrower than the chart is tall (a phone), the grid keeps to the
    # top, under its column numbers, rather than floating in the middle with a gap above it.
    figure.update_yaxes(
        title="true digit",
        autorange="reversed",
        type="category",
        scaleanchor="x",
        constrain="domain",
        constraintoward="top",
    )
    return _layout(figure, height=520)


def _phone_cell(value: float, normalise: bool) -> str:
    """A cell's text within a phone's column of 32 pixels: percent without its sign ("99", "0.3"), and
    thousands as "1.1k"."""
    if not value:
        return ""
    if normalise:
        return f"{100 * value:.0f}" if value >= 0.01 else f"{100 * value:.1f}"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{int(value)}"


def confusion_table(matrix: np.ndarray, normalise: bool) -> Any:
    """The confusion matrix as a table whose cells a finger can tap (a phone's view): rows the true digit,
    columns the answer, each cell shaded as the heatmap shades it (a pandas Styler)."""
    import pandas as pd
    from plotly.colors import sample_colorscale

    values = _confusion_values(matrix, normalise)
    shade = np.sqrt(values / values.max()) if values.max() > 0 else values
    digits = [str(d) for d in range(NUM_CLASSES)]
    text = [[_phone_cell(value, normalise) for value in row] for row in values]
    table = pd.DataFrame(text, index=digits, columns=digits)
    backgrounds = sample_colorscale("Blues", shade.reshape(-1).tolist())
    # Dark cells get white text, as the heatmap writes them.
    styles = [
        f"background-color: {colour}; color: {'white' if level > 0.6 else 'black'}"
        for colour, level in zip(backgrounds, shade.reshape(-1), strict=True)
    ]
    cell_styles = pd.DataFrame(np.array(styles).reshape(values.shape), index=digits, columns=digits)
    return table.style.apply(lambda _: cell_styles, axis=None)


def ranking_chart(rows: Sequence[Mapping]) -> go.Figure:
    """Horizontal bars of MNIST test and drawn-digit accuracy, best model on top."""
    ordered = sorted(rows, key=lambda row: row["test"])
    names = [row["label"] for row in ordered]
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
                textfont={"color": "white", "size": 13},
            )
        )
    lowest = min(min(row["test"], row["drawn"]) for row in rows)
    figure.update_xaxes(range=[max(0.0, lowest - 0.03), 1.0], tickformat=".0%", title="accuracy")
    # Every bar tall enough for its label at full size (Plotly shrinks a label to fit its bar).
    height = 90 + 2 * BAR_HEIGHT * len(rows)
    return _layout(figure, height=height, barmode="group", uniformtext={"minsize": 12, "mode": "show"})


def reliability_diagram(
    records: Mapping[ModelId, ReliabilityRecord], title: str, highlighted: ModelId | None = None
) -> go.Figure:
    """Accuracy against stated confidence per confidence bin, one line per model, and the diagonal
    a perfectly calibrated model would follow. Empty bins are left out, and each marker's area
    follows its bin's count; a bin of fewer than ``FEW_IN_BIN`` digits, whose share right is too
    uncertain to draw a line through, keeps a faint marker of its own. With ``highlighted``, the
    other models are drawn faintly, so that one model's line can be followed."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"color": MUTED, "dash": "dash"},
        )
    )
    for model_id, record in records.items():
        filled = [
            (confidence, accuracy, count)
            for confidence, accuracy, count in zip(record.confidence, record.accuracy, record.counts)
            if count > 0
        ]
        largest = max(point[2] for point in filled)
        opacity = 1.0 if highlighted is None or model_id == highlighted else FAINT
        for few, points in (
            (False, [p for p in filled if p[2] >= FEW_IN_BIN]),
            (True, [p for p in filled if p[2] < FEW_IN_BIN]),
        ):
            if few and not points:
                continue
            figure.add_trace(
                go.Scatter(
                    x=[point[0] for point in points],
                    y=[point[1] for point in points],
                    mode="markers" if few else "lines+markers",
                    name=f"Model {model_id} (ECE {record.ece:.2%})",
                    legendgroup=str(model_id),
                    showlegend=not few,
                    opacity=opacity * (FAINT if few else 1.0),
                    line={"color": model_colour(model_id), "width": 2 if model_id == highlighted else 1.5},
                    marker={
                        "color": model_colour(model_id),
                        "size": [4 + 14 * (point[2] / largest) ** 0.5 for point in points],
                    },
                    customdata=[point[2] for point in points],
                    hovertemplate="stated %{x:.1%}, right %{y:.1%} of %{customdata} digits"
                    + (" (too few to trust)" if few else "")
                    + "<extra></extra>",
                )
            )
    figure.update_xaxes(range=[0, 1.02], tickformat=".0%", title="stated confidence (bin mean)")
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%", title="share right")
    # The legend goes under the plot: six entries above it would collide with the title on a phone.
    legend = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}
    margin = {**_LAYOUT["margin"], "t": 50, "b": 20}
    return _layout(figure, height=520, title={"text": title}, legend=legend, margin=margin)


def pixel_grid(image: np.ndarray, cell: int = 10) -> np.ndarray:
    """An enlarged uint8 copy of a small image, each pixel a square with a faint grid between them."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    large = cv2.resize(
        (image * 255).astype(np.uint8), None, fx=cell, fy=cell, interpolation=cv2.INTER_NEAREST
    )
    large[::cell, :] = np.maximum(large[::cell, :], 60)
    large[:, ::cell] = np.maximum(large[:, ::cell], 60)
    return large


def _png_base64(image: np.ndarray) -> str:
    """A grey or RGB uint8 image as PNG bytes in base64, for a data URL inside the page's HTML."""
    encoded = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    return base64.b64encode(cv2.imencode(".png", encoded)[1].tobytes()).decode("ascii")


def thumbnail_url(image: np.ndarray) -> str:
    """A 28x28 model input as a small PNG data URL, dark ink on white, for a table's picture column."""
    ink = 255 - np.clip(np.asarray(image, dtype=np.float32) * 255, 0, 255).astype(np.uint8)
    return "data:image/png;base64," + _png_base64(ink)


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
        png = _png_base64(image)
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


def _signed(value: float) -> str:
    """A push with its sign, "0.00" when it rounds to zero (never "-0.00")."""
    rounded = round(float(value), 2)
    return "0.00" if rounded == 0 else f"{rounded:+.2f}"


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
        png = _png_base64(enlarged)
        star = "★" if unit in highlighted else ""
        cells.append(
            f'<div class="dd-unit" style="background:rgb({colour[0]},{colour[1]},{colour[2]})">{star}'
            f'<div class="dd-card"><img src="data:image/png;base64,{png}" width="112" height="112" '
            f'alt="unit {unit} incoming weights">unit {unit}<br>activation {value:.3f}<br>'
            f"pushes {int(target)} by {_signed(push)}</div></div>"
        )
    return (
        # Each column at most a cell wide, and narrower when the grid's column on the page is: the grid
        # shrinks to fit at any width instead of running off its edge.
        f'{_UNIT_CARD_STYLE}<div class="dd-units" '
        f'style="grid-template-columns:repeat({columns},minmax(0,{_CELL}px))">'
        f"{''.join(cells)}</div>"
    )


def rgb(colour: str) -> tuple[int, int, int]:
    """A "#RRGGBB" colour as (red, green, blue), 0 to 255, as OpenCV draws with it."""
    if len(colour) != 7 or colour[0] != "#":
        raise ValueError(f"a colour is written #RRGGBB, got {colour!r}")
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def boxed_picture(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    max_width: int = 1000,
    doubtful: int | None = None,
    left_out: Sequence[tuple[int, int, int, int]] = (),
) -> np.ndarray:
    """An RGB copy of an image (at most ``max_width`` wide) with each box outlined and numbered from 1,
    each number above its box (the picture gains a white band on top where a box reaches its top edge);
    the box at index ``doubtful``, if any, in ``DOUBTFUL`` and twice as thick; the ``left_out`` boxes
    (marks that were not read) thin, unnumbered and in ``MUTED``.

    Any image ``read_digits`` takes: grey, RGB, or RGBA (a canvas's transparent
    background shows as white).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float32) * 255, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255
        image = (image[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    scale = min(1.0, max_width / image.shape[1])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    colour, doubt, faint = rgb(ACCENT), rgb(DOUBTFUL), rgb(MUTED)
    line = max(2, round(max(image.shape[:2]) / 400))
    placed = []
    for number, (x, y, width, height) in enumerate(boxes, start=1):
        left, top = round(x * scale), round(y * scale)
        right, bottom = round((x + width) * scale), round((y + height) * scale)
        font = max(0.5, min(1.2, (bottom - top) / 60))
        (text_width, text_height), _ = cv2.getTextSize(str(number), cv2.FONT_HERSHEY_SIMPLEX, font, line)
        placed.append((number, left, top, right, bottom, font, text_width, text_height))
    # Each number sits on its box's top left corner, outside it; a white band above the picture makes
    # room where a box reaches its top edge, so that no number covers a digit.
    band = max([0, *(text_height + 2 * line - top for _, _, top, _, _, _, _, text_height in placed)])
    picture = np.pad(image, ((band, 0), (0, 0), (0, 0)), constant_values=255)  # A copy to draw on.
    for x, y, width, height in left_out:  # Under the digits' boxes: they matter more.
        top_left = (round(x * scale), round(y * scale) + band)
        bottom_right = (round((x + width) * scale), round((y + height) * scale) + band)
        cv2.rectangle(picture, top_left, bottom_right, faint, max(1, line // 2))
    for number, left, top, right, bottom, font, text_width, text_height in placed:
        top, bottom = top + band, bottom + band
        shade, thickness = (doubt, 2 * line) if number - 1 == doubtful else (colour, line)
        cv2.rectangle(picture, (left, top), (right, bottom), shade, thickness)
        label = str(number)
        label_top = top - text_height - 2 * line
        label_bottom = label_top + text_height + 2 * line
        cv2.rectangle(picture, (left, label_top), (left + text_width + 2 * line, label_bottom), shade, -1)
        cv2.putText(
            picture,
            label,
            (left + line, label_bottom - line),
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            (255, 255, 255),
            line,
        )
    return picture


def region_png(image: np.ndarray, box: tuple[int, int, int, int]) -> bytes:
    """One box of an image (grey, RGB or RGBA, uint8) as PNG bytes: what a kept digit looked like."""
    x, y, width, height = box
    region = np.ascontiguousarray(np.asarray(image)[y : y + height, x : x + width])
    if region.ndim == 3 and region.shape[2] in (3, 4):
        region = cv2.cvtColor(region, cv2.COLOR_RGB2BGR if region.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    return cv2.imencode(".png", region)[1].tobytes()


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
