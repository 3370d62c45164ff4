"""The drawings users kept: how each model does on them beside its MNIST figure, where it goes wrong,
and the user's own drawings to download or delete.

The page scales with the store: the counts come from the database, the models are measured on the newest
``SAMPLE_SIZE`` drawings (the caption says so when there are more), and the downloads are built only when
asked for, so a store of 100,000 drawings renders as fast as one of a few thousand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from digitdraw.drawings import collect
from digitdraw.learning import evaluate
from digitdraw.serving.networks import MODEL_IDS
from digitdraw.ui import app, charts

GALLERY_SIZE = 24
# The drawings the page reads and measures: enough for an accuracy to a point or so, few enough to render
# in about a second.
SAMPLE_SIZE = 2_000
# Your newest drawings listed with their pictures (about 300 bytes each) to choose which to delete.
TABLE_ROWS = 200
WHOSE = {"mine": "Mine (this browser)", "everyone": "Everyone's"}
# An accuracy whose 95% margin is wider than this, on fewer than 385 drawings, is said to be rough: the
# six models' MNIST test accuracies lie within 3.3 points of each other (docs/results.md).
FEW_DRAWINGS_MARGIN = 0.05


def whose_ui() -> str:
    """Mine or everyone's; returns the key of WHOSE."""
    choice = st.segmented_control("Drawings", list(WHOSE), format_func=WHOSE.get, default="mine", key="whose")
    return choice or "mine"


def accuracy_table(scores: dict[int, float], kept_label: str) -> pd.DataFrame:
    """Per model: accuracy on the kept drawings (the column ``kept_label``) beside its MNIST test accuracy,
    and the gap."""
    models, _ = app.loaded_models()
    rows = []
    for model_id, kept in scores.items():
        if model_id not in models:  # Deleted (a network someone trained) since the answers were computed.
            continue
        mnist = models[model_id].metrics.accuracy["test"]
        rows.append({"Model": app.model_name(model_id), kept_label: kept, "MNIST test": mnist,
                     "Gap (points)": 100 * (kept - mnist)})  # fmt: skip
    return pd.DataFrame(rows)


def misses_ui(drawings, answers: dict[int, np.ndarray], model_id: int) -> None:
    """The kept drawings the chosen model reads wrong, each with what every model says."""
    misses = [index for index, drawing in enumerate(drawings) if answers[model_id][index] != drawing.label]
    if not misses:
        st.success(
            f"{app.model_name(model_id)} reads every one of these drawings right.", icon=":material/check:"
        )
        return
    st.caption(
        f"{len(misses):,} of {len(drawings):,} read wrong; the first {min(len(misses), GALLERY_SIZE)} shown."
    )
    with st.container(horizontal=True, gap="small"):
        for index in misses[:GALLERY_SIZE]:
            drawing = drawings[index]
            said = " ".join(f"{m}:{answers[m][index]}" for m in answers)
            label = f"{app.article(drawing.label)} {drawing.label}"
            st.image(
                charts.display_image(drawing.model_input, size=app.STEP_IMAGE_WIDTH),
                caption=f"{label}, read {answers[model_id][index]} · models {said}",
                width=app.STEP_IMAGE_WIDTH,
            )


def my_drawings_ui(drawings, answers: dict[int, np.ndarray], total: int) -> None:
    """This browser's newest ``TABLE_ROWS`` drawings in a table, newest first, each with its picture and
    the second it was kept: select some to delete, or delete all ``total`` of them."""
    order = np.arange(len(drawings))[::-1][:TABLE_ROWS]  # The sample is oldest first.
    shown = [drawings[index] for index in order]
    table = pd.DataFrame(
        {
            "Drawing": [charts.thumbnail_url(drawing.model_input) for drawing in shown],
            "Kept": [drawing.created_at.strftime("%Y-%m-%d %H:%M:%S") for drawing in shown],
            "Digit": [drawing.label for drawing in shown],
            **{app.model_name(m): answers[m][order] for m in answers},
        }
    )
    if len(drawings) > len(shown):
        st.caption(f"The newest {len(shown)} of your {total:,}; Delete all of mine takes every one.")
    selection = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key="my_drawings_table",
        column_config={"Drawing": st.column_config.ImageColumn("Drawing", width="small")},
    )
    chosen = [shown[row].id for row in selection.selection.rows]
    with st.container(horizontal=True):
        if st.button(f"Delete the {len(chosen)} selected", disabled=not chosen, key="delete_selected"):
            deleted = app.forget_drawings(chosen)
            st.toast(f"Deleted {deleted} drawing(s).")
            st.rerun()
        with st.popover("Delete all of mine", icon=":material/delete:"):
            st.write(f"Delete all {total:,} drawings this browser kept? This cannot be undone.")
            if st.button("Yes, delete them all", type="primary", key="delete_all_mine"):
                deleted = app.forget_my_drawings()
                st.toast(f"Deleted {deleted} drawing(s).")
                st.rerun()


app.page_ui()
st.title("Your drawings")
st.caption(
    "Drawings kept from the Draw page, with the digit each really is. Models that shine on MNIST often "
    "stumble on digits people draw here: the gap is the story."
)
whose = whose_ui()
mine = whose == "mine"
digit_counts = app.kept_digit_counts(mine)
if digit_counts is None:
    st.stop()
total = sum(digit_counts.values())
if not total:
    st.info(
        "No drawings kept yet. Draw on the Draw page, then tap **Right** or the digit it really is.",
        icon=":material/draw:",
    )
    st.stop()
drawings = app.kept_drawings(mine, newest=SAMPLE_SIZE)
if drawings is None:
    st.stop()

answers, errors = collect.current_answers(drawings)
for model_id, message in errors.items():
    app.model_error_ui(model_id, message)
labels = np.array([drawing.label for drawing in drawings])
scores = collect.accuracies(drawings, answers)
counts = st.columns(3)
counts[0].metric("Drawings", f"{total:,}")
counts[1].metric("Digits covered", f"{len(digit_counts)} of 10")
if scores:
    top = max(scores.values())
    best = [model_id for model_id, score in scores.items() if score == top]
    name = app.model_name(best[0]) if len(best) == 1 else f"{len(best)} models tie"
    counts[2].metric("Best here", name, f"{top:.1%}", delta_arrow="off")

kept_label = "Your drawings" if mine else "Everyone's drawings"
st.subheader(f"Accuracy: {kept_label.lower()} against MNIST")
if answers:
    st.dataframe(
        accuracy_table(scores, kept_label),
        hide_index=True,
        column_config={
            kept_label: st.column_config.NumberColumn(format="percent"),
            "MNIST test": st.column_config.NumberColumn(format="percent"),
            "Gap (points)": st.column_config.NumberColumn(format="%+.1f"),
        },
    )
    measured = (
        "every drawing" if len(drawings) == total else f"the newest {len(drawings):,} of {total:,} drawings"
    )
    margin = evaluate.accuracy_margin(len(drawings))
    st.caption(
        f"Every model answers {measured} now, with its current weights: a retrained model is judged anew."
        + (
            f" On {len(drawings):,} drawings an accuracy can be off by up to {100 * margin:.0f} points "
            "either way (95 times in 100), so small gaps between models mean little yet."
            if margin > FEW_DRAWINGS_MARGIN
            else ""
        )
    )

    model_id = app.model_picker_ui("Model", key="kept_model", default=max(MODEL_IDS))
    if model_id in answers:
        left, right = st.columns([1, 1], gap="large")
        with left:
            st.subheader("Confusion matrix")
            matrix = evaluate.confusion_matrix(labels, answers[model_id])
            app.chart_ui(charts.confusion_heatmap(matrix, normalise=False), key="kept_confusion")
        with right:
            st.subheader("Read wrong")
            misses_ui(drawings, answers, model_id)

st.subheader("Download")
with st.container(horizontal=True):
    # Built when a button is pressed, from every drawing, not on every rerun from the sample.
    st.download_button(
        "MNIST-style .npz",
        lambda: collect.npz_bytes(app.kept_drawings(mine) or []),
        "digitdraw-drawings.npz",
        icon=":material/download:",
    )
    st.download_button(
        "PNG images (.zip)",
        lambda: collect.png_zip_bytes(app.kept_drawings(mine) or []),
        "digitdraw-drawings.zip",
        icon=":material/download:",
    )
if mine:
    st.subheader("Manage yours")
    my_drawings_ui(drawings, answers, total)
