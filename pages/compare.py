"""The study's table beside ours, with the numbers the study did not report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from digitdraw.learning import opening
from digitdraw.learning.evalsets import OTHER_HANDS
from digitdraw.ui import app, charts


def study_table(rows: list[dict]) -> pd.DataFrame:
    """The study's table reproduced, our numbers beside its numbers, plus test and drawn accuracy, and the
    held-out kept drawings' where any model was trained on them."""
    table = pd.DataFrame(
        {
            "Model": [row["model"] for row in rows],
            "Architecture": [row["architecture"] for row in rows],
            "Activation": [row["activation"] for row in rows],
            "Train: study": [app.percent(row["study_train"]) for row in rows],
            "Train: ours": [app.percent(row["train"]) for row in rows],
            "Validation: study": [app.percent(row["study_validation"]) for row in rows],
            "Validation: ours": [app.percent(row["validation"]) for row in rows],
            "Test (MNIST)": [app.percent(row["test"]) for row in rows],
            "Drawn digits": [app.percent(row["drawn"]) for row in rows],
        }
    )
    if any(row["kept_drawings"] is not None for row in rows):
        table["Kept drawings (held out)"] = [app.kept_drawings_cell(row["kept_drawings"]) for row in rows]
    return table


def recipe_table(rows: list[dict]) -> pd.DataFrame:
    """Each model's figures beside those of the same network trained by the baseline recipe, same run."""
    rows = [row for row in rows if row["baseline"] is not None]
    return pd.DataFrame(
        {
            "Model": [str(row["model_id"]) for row in rows],
            "Recipe": [row["recipe"] for row in rows],
            "Test (MNIST)": [app.percent(row["test"]) for row in rows],
            "Drawn digits": [app.percent(row["drawn"]) for row in rows],
            "Baseline recipe": [row["baseline"].recipe for row in rows],
            "Test: baseline": [app.percent(row["baseline"].accuracy["test"]) for row in rows],
            "Drawn: baseline": [app.percent(row["baseline"].accuracy["drawn"]) for row in rows],
        }
    )


def cost_table(rows: list[dict]) -> pd.DataFrame:
    """What each model costs: parameters, training time and one prediction's latency."""
    return pd.DataFrame(
        {
            "Model": [row["model"] for row in rows],
            "Architecture": [row["architecture"] for row in rows],
            "Parameters": [f"{row['parameters']:,}" for row in rows],
            "Training time": [f"{row['training_seconds']:.0f} s" for row in rows],
            "One prediction": [f"{row['latency_us']:.0f} µs" for row in rows],
        }
    )


# The sets a calibration file may measure, as the page names them (``saved_models.CalibrationSet``), and
# shorter, for the buttons that pick one: four must fit half a laptop's page and a phone's width.
SET_NAMES = {
    "test": "MNIST test",
    "drawn": "drawn digits",
    "scanned": "scanned digits",
    "hershey": "Hershey fonts",
}
SET_BUTTONS = {"test": "MNIST", "drawn": "Drawn", "scanned": "Scanned", "hershey": "Hershey"}


def other_hands_table(rows: list[dict]) -> pd.DataFrame:
    """Each calibrated model's accuracy on MNIST's drawn digits beside other hands', and the share of each
    that its digit score turns away (MNIST test is in the study's table just above)."""
    return pd.DataFrame(
        {
            "Model": [row["model"] for row in rows],
            "Drawn": [app.percent(row["accuracy"]["drawn"]) for row in rows],
            "Scanned": [app.percent(row["accuracy"]["scanned"]) for row in rows],
            "Hershey fonts": [app.percent(row["accuracy"]["hershey"]) for row in rows],
            # Three shares in one short cell, so that the table fits a phone.
            "Turned away (drawn / scanned / Hershey)": [
                " / ".join(f"{100 * row['turned_away'][name]:.1f}" for name in ("drawn", *OTHER_HANDS)) + "%"
                for row in rows
            ],
        }
    )


def committee_note(rows: list[dict]) -> str:
    """A sentence naming the models that judge "is it a digit?" by another model's score (a committee), and
    so turn away the same drawings as that model; empty when none does."""
    sharing = [row for row in rows if row["committee_member"] is not None]
    if not sharing:
        return ""
    member = sharing[0]["committee_member"]
    names = [str(row["model_id"]) for row in sharing]
    if len(names) == 1:
        return (
            f" Model {names[0]} judges whether a drawing is a digit by model {member}'s score (a "
            f"committee), so it turns away the same drawings as model {member}."
        )
    return (
        f" Models {', '.join(names[:-1])} and {names[-1]} judge whether a drawing is a digit by model "
        f"{member}'s score (a committee), so they turn away the same drawings as model {member}."
    )


def other_hands_ui(rows: list[dict]) -> None:
    """How the models read digits MNIST's writers did not write, beside how they read MNIST's."""
    st.subheader("On digits by other hands")
    st.caption(
        "MNIST's test digits, even redrawn as strokes (Drawn), come from the same kind of writers the "
        "models learned from, so they flatter every model. These do not: 1,797 small scanned digits by "
        "43 people (scikit-learn's) and 1,000 digits in six printed Hershey fonts drawn like a canvas. "
        "Nothing was trained or tuned on them. Turned away: the share the digit score calls not a "
        "digit, though every one is." + committee_note(rows)
    )
    st.table(other_hands_table(rows), hide_index=True, border="horizontal")


def calibration_table(rows: list[dict]) -> pd.DataFrame:
    """Expected calibration error before and after temperature scaling, per model and set."""
    return pd.DataFrame(
        {
            "Model": [row["model_id"] for row in rows],
            "Temperature": [f"{row['temperature']:.2f}" for row in rows],
            "MNIST test: ECE raw": [app.percent(row["ece_test_raw"]) for row in rows],
            "MNIST test: ECE calibrated": [app.percent(row["ece_test_calibrated"]) for row in rows],
            "Drawn digits: ECE raw": [app.percent(row["ece_drawn_raw"]) for row in rows],
            "Drawn digits: ECE calibrated": [app.percent(row["ece_drawn_calibrated"]) for row in rows],
        }
    )


def calibration_ui(rows: list[dict]) -> None:
    """Honest confidence: reliability diagrams and ECE, raw and temperature-scaled, per model."""
    st.subheader("How honest is the confidence?")
    if not rows:
        st.info(
            "No model is calibrated yet: `python -m digitdraw calibrate` fits each model's temperature.",
            icon=":material/info:",
        )
        return
    st.caption(
        "Of the digits a model reads with 90% confidence, 90% should be right. The expected calibration "
        "error (ECE) is the average gap between stated confidence and the share right, over 15 bins of "
        "confidence. Temperature scaling divides each model's logits by one number fitted on MNIST's "
        "validation split; it never changes which digit wins, only how sure the model says it is. The "
        "Draw page shows the calibrated confidence."
    )
    st.dataframe(calibration_table(rows), hide_index=True)
    left, right = st.columns(2)
    key = left.segmented_control(
        "Digits", list(SET_NAMES), format_func=SET_BUTTONS.get, default="drawn", key="calibration_set"
    )
    version = right.segmented_control(
        "Confidence", ["raw", "calibrated"], default="raw", key="calibration_version"
    )
    ids = [row["model_id"] for row in rows]
    highlighted = st.selectbox(
        "Follow one model",
        [None, *ids],
        index=1 + ids.index(4) if 4 in ids else 0,
        format_func=lambda model_id: "All alike" if model_id is None else app.model_name(model_id),
        key="reliability_model",
        width=240,
    )
    key, version = key or "drawn", version or "raw"
    records = {row["model_id"]: row["reliability"][key][version] for row in rows}
    title = f"Reliability on {SET_NAMES[key]}, {version} confidence"
    app.chart_ui(charts.reliability_diagram(records, title, highlighted), key="reliability")
    st.caption(
        f"Faint markers are bins of fewer than {charts.FEW_IN_BIN} digits, too few to trust; the lines join "
        "the others. Pick a model to follow, or tap its name in the legend to hide it."
    )


app.page_ui()
st.title("Compare the models")
st.caption(
    "The study reported training and validation accuracy. We add accuracy on the untouched MNIST test "
    "set, on digits redrawn as canvas strokes (what the Draw page meets) and on digits by other hands, "
    "the size of each network, how long it took to train and how long one prediction takes on this "
    "server."
)
rows = app.comparison_rows()
calibration_rows = app.calibration_rows()
_, errors = app.loaded_models()
for model_id, message in errors.items():
    app.model_error_ui(model_id, message)

if rows:
    best = max(rows, key=lambda row: row["test"])
    best_drawn = max(rows, key=lambda row: row["drawn"])
    first, second, third = st.columns(3)
    first.metric(
        "Best on MNIST test", app.model_name(best["model_id"]), app.percent(best["test"]), delta_arrow="off"
    )
    second.metric(
        "Best on drawn digits",
        app.model_name(best_drawn["model_id"]),
        app.percent(best_drawn["drawn"]),
        delta_arrow="off",
    )
    third.metric("Slowest prediction", f"{max(row['latency_us'] for row in rows):.0f} µs")
    st.subheader("The study's table, reproduced")
    # A static table: six rows need no scrolling or sorting, and its headers and cells wrap, so that
    # all nine columns fit a laptop's page (a dataframe hid the last three behind a sideways scroll).
    app.narrow_table_ui(
        study_table(rows),
        ["Model", "Validation: ours", "Test (MNIST)", "Drawn digits"],
        lambda table: st.table(table, hide_index=True, border="horizontal"),
    )
    any_kept = any(row["kept_drawings"] is not None for row in rows)
    st.caption(
        "Train and validation: the study's numbers beside ours (the study gave no validation figure for "
        "its one-hidden-layer network; model 6, a small convolutional network, is ours, beyond the study, "
        "so it has none). Test: the 10,000 MNIST test images, never used in training. "
        "Drawn digits: MNIST test digits redrawn as canvas strokes of 10 to 35 pixels."
        + (
            " Kept drawings: for a model trained on the drawings users kept too, its accuracy on those "
            "its training held out (never trained on), and how many; each run measured the store as it "
            "stood then, so two models' figures may be on different drawings."
            if any_kept
            else ""
        )
        + (
            f" A network opened from a file was measured when it was opened, on the first "
            f"{opening.TRAIN_SAMPLE:,} training and {opening.VALIDATION_SAMPLE:,} validation images: it may "
            "well have been trained on them, so only its test and drawn figures are held out."
            if any(row["opened"] for row in rows)
            else ""
        )
    )
    other_hands_ui(calibration_rows)
    if any(row["baseline"] is not None for row in rows):
        st.subheader("Two training recipes")
        # Static tables, as the study's: a phone shows the columns that matter, the rest a tap away, and
        # no table toolbar sits over the heading above (a dataframe's shows on a touch screen).
        app.narrow_table_ui(
            recipe_table(rows),
            ["Model", "Test (MNIST)", "Test: baseline"],
            lambda table: st.table(table, hide_index=True, border="horizontal"),
        )
        st.caption(
            "The study's recipe trains on MNIST with mild augmentation; the improved one thickens or thins "
            "strokes by up to two pixels. It was chosen as the best on digits drawn from MNIST's validation "
            "images, keeping validation accuracy within 0.3 points (docs/research/training-recipes.md); on "
            "the test and drawn test digits above it is better for some networks and worse for others. "
            "The training command trained every network by the study's recipe "
            "too, from the same seed, and kept its figures beside the model's own; the app uses the "
            "model's own weights."
        )
    st.subheader("What each model costs")
    app.narrow_table_ui(
        cost_table(rows),
        ["Model", "Parameters", "One prediction"],
        lambda table: st.table(table, hide_index=True, border="horizontal"),
    )
    st.subheader("Ranking")
    app.chart_ui(charts.ranking_chart(rows), key="ranking")
calibration_ui(calibration_rows)
st.subheader("Take a network away")
st.caption(
    "Any network as a Keras file (it gives DigitDraw's probabilities on images prepared by "
    "digitdraw.to_mnist, which its metadata and model card describe), as plain NumPy arrays with its "
    "layers described in JSON (DigitDraw opens it again), or just its model card."
)
app.download_ui(app.model_picker_ui("Network", key="compare_download_model"), key="compare_download")
