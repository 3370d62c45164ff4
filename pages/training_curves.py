"""Per-epoch accuracy and loss on training, validation and test data, for one model or all."""

from __future__ import annotations

import streamlit as st

from digitdraw.ui import app, charts


def options_ui() -> tuple[str, str, str]:
    """The view (one model or all), the metric and, for all models, which split to overlay."""
    view, metric, split = st.columns(3)
    chosen_view = view.segmented_control(
        "Show", ["One model", "All models"], default="One model", required=True, key="curves_view"
    )
    chosen_metric = metric.segmented_control(
        "Metric", ["accuracy", "loss"], default="accuracy", required=True, key="curves_metric"
    )
    chosen_split = split.segmented_control(
        "Data (all models)",
        ["train", "validation", "test"],
        default="test",
        required=True,
        key="curves_split",
        disabled=chosen_view != "All models",
        help="Which data all the models' curves are on. One model shows all three at once.",
    )
    return chosen_view, chosen_metric, chosen_split


app.page_ui()
st.title("Training curves")
st.caption(
    "After every epoch each network was scored on its 50,000 training images, the 10,000 held-out "
    "validation images and the 10,000 MNIST test images, as the study plotted them. The dashed "
    "horizontal lines are the study's reported numbers; the dotted vertical line marks the epoch kept."
)
view, metric, split = options_ui()
models, errors = app.loaded_models()

if view == "One model":
    model_id = app.model_picker_ui("Model", key="curves_model")
    model = app.require_model_ui(model_id)
    if model is not None and model.history is None:
        st.info(app.opened_note(model.card.opened), icon=":material/upload_file:")
    elif model is not None:
        zoomed = st.toggle(
            "Zoom in on the later epochs",
            key="curves_zoom",
            help="Fits the axis to the second half of training, where the three curves part.",
        )
        app.chart_ui(
            charts.training_curves(model.history, metric, model.spec, zoomed=zoomed), key="curves_one"
        )
    if model is not None:
        final = model.metrics.accuracy
        columns = st.columns(4)
        # The saved model is the epoch kept (the best on validation), not the last one trained.
        kept = ", epoch kept" if model.history is not None else ""
        labels = {"train": "Training", "validation": "Validation", "test": "MNIST test", "drawn": "Drawn"}
        for column, (name, label) in zip(columns, labels.items()):
            column.metric(f"{label}{kept}", app.percent(final[name]))
else:
    for model_id, message in errors.items():
        app.model_error_ui(model_id, message)
    histories = {model_id: model.history for model_id, model in models.items() if model.history is not None}
    opened = [str(model_id) for model_id, model in models.items() if model.history is None]
    if opened:
        st.caption(f"Opened from a file, so without curves: {', '.join(opened)}.")
    labels = {model_id: app.model_label(model_id) for model_id in histories}
    if histories:
        app.chart_ui(charts.overlaid_curves(histories, metric, split, labels), key="curves_all")
