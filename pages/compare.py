"""The study's table beside ours, with the numbers the study did not report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from digitdraw import app, charts


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """The dashboard table, one row per model, with readable column names."""
    return pd.DataFrame(
        {
            "Model": [row["model_id"] for row in rows],
            "Architecture": [row["architecture"] for row in rows],
            "Activation": [row["activation"] for row in rows],
            "Study: train": [row["study_train"] for row in rows],
            "Ours: train": [row["train"] for row in rows],
            "Study: validation": [row["study_validation"] for row in rows],
            "Ours: validation": [row["validation"] for row in rows],
            "Test (MNIST)": [row["test"] for row in rows],
            "Drawn digits": [row["drawn"] for row in rows],
            "Parameters": [row["parameters"] for row in rows],
            "Training (s)": [row["training_seconds"] for row in rows],
            "Inference (µs)": [row["latency_us"] for row in rows],
        }
    )


st.title("Compare the models")
st.caption(
    "The study reported training and validation accuracy. We add accuracy on the untouched MNIST test "
    "set, on digits redrawn as canvas strokes (what the Draw page meets), the size of each network, "
    "how long it took to train and how long one prediction takes on this server."
)
rows = app.comparison_rows()
_, errors = app.loaded_models()
for model_id, message in errors.items():
    app.model_error_ui(model_id, message)

if rows:
    best = max(rows, key=lambda row: row["test"])
    best_drawn = max(rows, key=lambda row: row["drawn"])
    first, second, third = st.columns(3)
    first.metric(
        "Best on MNIST test", f"Model {best['model_id']}", app.percent(best["test"]), delta_arrow="off"
    )
    second.metric(
        "Best on drawn digits",
        f"Model {best_drawn['model_id']}",
        app.percent(best_drawn["drawn"]),
        delta_arrow="off",
    )
    third.metric("Slowest prediction", f"{max(row['latency_us'] for row in rows):.0f} µs")
    percent_columns = (
        "Study: train",
        "Ours: train",
        "Study: validation",
        "Ours: validation",
        "Test (MNIST)",
        "Drawn digits",
    )
    st.dataframe(
        comparison_table(rows),
        hide_index=True,
        column_config={
            **{name: st.column_config.NumberColumn(name, format="percent") for name in percent_columns},
            "Parameters": st.column_config.NumberColumn(format="localized"),
            "Training (s)": st.column_config.NumberColumn(format="%.0f"),
            "Inference (µs)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    st.subheader("Ranking")
    st.plotly_chart(charts.ranking_chart(rows), key="ranking")
