"""Inside the networks: the same drawing through two networks side by side, layer by layer, and what
each of their first-layer units looks for."""

from __future__ import annotations

import numpy as np
import streamlit as st

from digitdraw import inside, saved_models
from digitdraw.models import is_custom
from digitdraw.preprocess import to_mnist
from digitdraw.ui import app, charts

# The study's comparisons: one size of network, sigmoid against ReLU; and the wide one alone.
PAIRS = {
    "16 units: sigmoid vs ReLU": (1, 2),
    "64 units: sigmoid vs ReLU": (3, 4),
    "One wide layer": (5,),
}
EXPLAIN = {
    "sigmoid": (
        "A sigmoid unit near 0 or 1 is saturated: small changes to the drawing barely move it, "
        "so it has stopped learning from them."
    ),
    "relu": (
        "A ReLU unit at 0 is silent for this drawing; one that is 0 for every MNIST digit is dead "
        "and never takes part."
    ),
}


def source_ui() -> tuple[np.ndarray | None, str]:
    """The 28x28 input to look inside: the Draw page's drawing, or an MNIST test digit."""
    drawing = app.current_drawing()
    choices = ["Your drawing", "An MNIST test digit"] if drawing is not None else ["An MNIST test digit"]
    choice = st.segmented_control("Look at", choices, default=choices[0], key="inside_source") or choices[0]
    if choice == "Your drawing":
        return drawing, "your drawing"
    test_set = app.mnist_test_set()
    if test_set is None:
        st.info("The MNIST test images are not installed; draw a digit on the Draw page instead.")
        return None, ""
    index = int(st.number_input("Test image", 0, len(test_set[0]) - 1, 0, key="inside_index"))
    return to_mnist(test_set[0][index]), f"MNIST test image {index} (a {test_set[1][index]})"


def network_ui(model: saved_models.SavedModel, image: np.ndarray) -> np.ndarray:
    """One network's layers for the image; returns its first-layer activations for sorting its units."""
    model_id = model.card.model_id
    seen = inside.look_inside(model.network, image)
    activation = model.card.architecture.hidden_activation
    st.markdown(f"**{app.model_label(model_id)}** reads **{seen.answer}** ({seen.probabilities.max():.0%})")
    dead_on_mnist = app.dead_on_mnist(model) if activation == "relu" else None
    scale = 1.0 if activation == "sigmoid" else max(float(layer.max()) for layer in seen.hidden)
    for layer, activations in enumerate(seen.hidden):
        top = seen.top_units(layer)
        st.caption(
            f"Hidden layer {layer + 1}: {len(activations)} units, ★ the 3 that pushed {seen.answer} most"
        )
        st.plotly_chart(
            charts.unit_grid(activations, seen.contributions[layer], top, seen.answer, scale),
            config={"displayModeBar": False},
            key=f"units_{model_id}_{layer}",
        )
        if activation not in EXPLAIN:
            continue  # Saturation and dead units are told for sigmoid and ReLU, the study's two.
        quiet = inside.saturated_or_dead(activations, activation)
        if activation == "sigmoid":
            st.caption(f"{quiet.sum()} of {quiet.size} saturated (below 0.05 or above 0.95) on this input.")
        else:
            dead = (
                ""
                if dead_on_mnist is None
                else f"; {dead_on_mnist[layer].sum()} dead on all 10,000 MNIST digits"
            )
            st.caption(f"{quiet.sum()} of {quiet.size} silent (0) on this input{dead}.")
    st.html(charts.probability_bars(seen.probabilities, "Output layer"))
    if activation in EXPLAIN:
        st.caption(EXPLAIN[activation])
    return seen.hidden[0]


def weights_ui(model: saved_models.SavedModel, first_layer: np.ndarray) -> None:
    """Every first-layer unit's incoming weights as a picture, the units this input excites most first."""
    model_id = model.card.model_id
    order = np.argsort(-first_layer)
    pictures = inside.first_layer_weights(model.network)[order]
    columns = 4 if len(pictures) <= 16 else 8
    st.image(
        inside.diverging_tiles(pictures, columns=columns),
        caption=f"Model {model_id}: units {', '.join(str(unit) for unit in order[:4])}, … (strongest first)",
    )


app.page_ui()
st.title("Inside the networks")
st.caption(
    "The same input through two networks of the study side by side: every hidden unit's activation, "
    "the units that carried the answer, and what each first-layer unit looks for."
)
image, name = source_ui()
if image is not None:
    first_pair = next(iter(PAIRS))
    # The networks people trained (Train page), each on its own, after the study's comparisons.
    pairs = {**PAIRS, **{f"Yours: {m}": (m,) for m in app.model_ids() if is_custom(m)}}
    pair = st.segmented_control("Compare", list(pairs), default=first_pair, key="inside_pair")
    model_ids = pairs.get(pair, PAIRS[first_pair])
    left, right = st.columns([1, 3], gap="large")
    left.image(charts.pixel_grid(image, cell=5), caption=f"The input: {name}", width=140)
    first_layers = {}  # Model id -> the model and its first-layer activations, for each one that loads.
    with right:
        for column, model_id in zip(st.columns(len(model_ids), gap="large"), model_ids):
            with column:
                model = app.require_model_ui(model_id)
                if model is not None:
                    first_layers[model_id] = model, network_ui(model, image)
    st.subheader("What each first-layer unit looks for")
    st.caption(
        "Each picture is one unit's 784 incoming weights: red where ink excites the unit, blue where ink "
        "holds it back, one shared scale. Sorted by how strongly this input excites the unit."
    )
    for column, (model, first_layer) in zip(st.columns(len(model_ids), gap="large"), first_layers.values()):
        with column:
            weights_ui(model, first_layer)
