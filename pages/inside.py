"""Inside the networks: the same drawing through two networks side by side, layer by layer, and what
each of their first-layer units looks for; why every network reads what it reads, what small change
would make one read another digit, and how much damage one survives. Only the chosen view is computed."""

from __future__ import annotations

import numpy as np
import streamlit as st

from digitdraw.explaining import attribution, counterfactual, damage, inside
from digitdraw.serving import saved_models
from digitdraw.serving.preprocess import BOX_SIZE, IMAGE_SIZE, PREPROCESSING_STEPS, to_mnist
from digitdraw.ui import app, charts

# Screen pixels per input pixel: the input's pictures are as wide as the Draw page's.
CELL = app.STEP_IMAGE_WIDTH // IMAGE_SIZE
# The study's comparisons: one size of network, sigmoid against ReLU; and the wide one alone. Then the
# small CNN beyond the study beside the study's best network.
PAIRS = {
    "16 units: sigmoid vs ReLU": (1, 2),
    "64 units: sigmoid vs ReLU": (3, 4),
    "One wide layer": (5,),
    "A CNN (beyond the study) vs one wide layer": (6, 5),
}
# Screen pixels per feature-map pixel: a 26x26 map is 52 pixels wide, four to eight of them in a row.
MAP_TILE = 52
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


def source_ui() -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """The input to look inside, the Draw page's drawing or an MNIST test digit: its 28x28 model input,
    the image it was made from (None when that is not at hand) and a name for it."""
    drawing = app.current_drawing()
    choices = ["Your drawing", "An MNIST test digit"] if drawing is not None else ["An MNIST test digit"]
    choice = st.segmented_control("Look at", choices, default=choices[0], key="inside_source") or choices[0]
    if choice == "Your drawing":
        return drawing, app.current_canvas(), "your drawing"
    test_set = app.mnist_test_set()
    if test_set is None:
        st.info("The MNIST test images are not installed; draw a digit on the Draw page instead.")
        return None, None, ""
    index = int(st.number_input("Test image", 0, len(test_set[0]) - 1, 0, key="inside_index"))
    raw = test_set[0][index]
    return (
        to_mnist(raw),
        raw,
        f"MNIST test image {index} ({app.article(test_set[1][index])} {test_set[1][index]})",
    )


def _quiet_caption(kind: str, activations: np.ndarray, dead: np.ndarray | None, what: str) -> str | None:
    """How many of a layer's values have stopped responding on this input (and, for ReLU, how many of its
    units no MNIST digit wakes), or None for an activation without such a notion."""
    if kind not in ("sigmoid", "relu"):
        return None
    quiet = inside.saturated_or_dead(activations, kind)
    if kind == "sigmoid":
        return (
            f"{quiet.sum()} of {quiet.size} saturated (below {inside.SATURATED_BELOW} or above "
            f"{inside.SATURATED_ABOVE}) on this input."
        )
    dead_note = "" if dead is None else f"; {dead.sum()} {what} dead on all 10,000 MNIST digits"
    return f"{quiet.sum()} of {quiet.size} silent (0) on this input{dead_note}."


def feature_maps_ui(maps: np.ndarray, top: list[int], title: str) -> None:
    """A convolution's feature maps for this input as small pictures, one per filter, on one scale."""
    stack = np.moveaxis(maps, -1, 0)
    columns = 8 if len(stack) > 8 else 4
    strongest = ", ".join(str(unit) for unit in top) or "none"
    st.image(
        inside.diverging_tiles(stack, columns=columns, tile=MAP_TILE, gap=3),
        caption=f"{title}; maps {strongest} pushed the answer most (numbered row by row from 0)",
    )


def network_ui(model: saved_models.SavedModel, image: np.ndarray) -> np.ndarray | None:
    """One network's layers for the image; returns its first-layer activation per unit (per feature map,
    its sum, for a convolution) for sorting its units (None for a network without hidden layers)."""
    model_id = model.card.model_id
    seen = inside.look_inside(model.network, image)
    architecture = model.card.architecture
    hidden_layers = architecture.layers[:-1]
    st.markdown(f"**{app.model_label(model_id)}** reads **{seen.answer}** ({seen.confidence:.0%})")
    kinds = {layer.activation for layer in hidden_layers if layer.has_weights}
    dead_on_mnist = app.dead_on_mnist(model) if "relu" in kinds else None
    scales = inside.activation_scales(model.network, seen.hidden)
    dense_number = 0
    for layer, (activations, spec) in enumerate(zip(seen.hidden, hidden_layers)):
        top, scale = seen.top_units(layer), scales[layer]
        dead = None if dead_on_mnist is None else dead_on_mnist[layer]
        if spec.kind == "pool":
            height, width, _ = activations.shape
            kept = "the largest" if spec.pooling == "max" else "the average"
            window = f"{spec.kernel[0]}×{spec.kernel[1]}"
            st.caption(
                f"{spec.pooling.title()} pool: each map shrunk to {height}×{width}, keeping {kept} of every "
                f"{window}."
            )
            continue
        if spec.kind == "conv":
            height, width, maps = activations.shape
            number = sum(kind.kind == "conv" for kind in hidden_layers[: layer + 1])
            title = f"Convolution {number}: {maps} feature maps of {height}×{width}"
            feature_maps_ui(activations, top, title)
            quiet = _quiet_caption(spec.activation, activations, dead, "maps")
            if quiet:
                st.caption(quiet)
            continue
        dense_number += 1
        first = layer == 0
        # A phone has no pointer to hover with; a tablet is told from a laptop by nothing the server sees.
        point = "tap" if app.on_phone() else "hover over or tap"
        hover = f", {point} one for its incoming weights" if first else ""
        st.caption(
            f"Hidden layer {dense_number}: {len(activations)} units, "
            f"★ the 3 that pushed {seen.answer} most{hover}"
        )
        if first:  # Hovering a first-layer unit shows its incoming weights: a picture.
            pictures = inside.first_layer_weights(model.network)
            pushes = seen.contributions[0]
            st.html(charts.first_layer_grid(activations, pushes, top, seen.answer, scale, pictures))
        else:
            app.chart_ui(
                charts.unit_grid(activations, seen.contributions[layer], top, seen.answer, scale),
                key=f"units_{model_id}_{layer}",
            )
        quiet = _quiet_caption(spec.activation, activations, dead, "units")
        if quiet:
            st.caption(quiet)
    if not seen.hidden:
        st.caption("No hidden layers: the input goes straight to the output layer.")
    st.html(charts.probability_bars(seen.probabilities, "Output layer"))
    for kind in sorted(kinds & set(EXPLAIN)):
        st.caption(EXPLAIN[kind])
    if architecture.is_convolutional:
        st.caption(
            "A feature map is one small filter (3×3 in model 6) slid over the whole image: red where it "
            "found its pattern, "
            "white where it found nothing. A map counts as one unit: its push is the sum over its "
            "positions, and it is dead when it is 0 everywhere on every MNIST digit."
        )
    return inside.unit_totals(seen.hidden[0]) if seen.hidden else None


def weights_ui(model: saved_models.SavedModel, first_layer: np.ndarray) -> None:
    """Every first-layer unit's incoming weights as a picture, the units this input excites most first."""
    model_id = model.card.model_id
    order = np.argsort(-first_layer)
    pictures = inside.first_layer_weights(model.network)[order]
    columns = 4 if len(pictures) <= 16 else 8
    what = "filters" if model.card.architecture.layers[0].kind == "conv" else "units"
    st.image(
        inside.diverging_tiles(pictures, columns=columns),
        caption=f"{app.model_name(model_id)}: {what} {', '.join(str(unit) for unit in order[:4])}, … "
        "(strongest first)",
    )


ANY_TWO = "Any two"


def layers_ui(image: np.ndarray, name: str) -> None:
    """Two networks side by side, layer by layer, and their first-layer units' weights."""
    first_pair = next(iter(PAIRS))
    pair = st.segmented_control(
        "Compare", [*PAIRS, ANY_TWO], default=first_pair, key="inside_pair", persist_state="session"
    )
    if pair == ANY_TWO:  # Any of the models the app serves, the study's or not.
        models, errors = app.loaded_models()
        # Sorted by their text, so that ids of any kind sort, whichever load and whichever fail.
        choices = sorted([*models, *errors], key=str)
        left_choice, right_choice = st.columns(2)
        model_ids = (
            left_choice.selectbox(
                "Left", choices, key="inside_left", format_func=app.model_label, persist_state="session"
            ),
            right_choice.selectbox(
                "Right",
                choices,
                index=min(1, len(choices) - 1),
                key="inside_right",
                format_func=app.model_label,
                persist_state="session",
            ),
        )
        model_ids = tuple(dict.fromkeys(model_ids))  # The same model twice is shown once.
    else:
        model_ids = PAIRS[pair or first_pair]
    left, right = st.columns([1, 3], gap="large")
    left.image(charts.pixel_grid(image, cell=CELL), caption=f"The input: {name}", width=app.STEP_IMAGE_WIDTH)
    first_layers = {}  # Model id -> the model and its first-layer activations, for each one that loads.
    with right:
        for column, model_id in zip(st.columns(len(model_ids), gap="large"), model_ids):
            with column:
                model = app.require_model_ui(model_id)
                if model is not None:
                    first_layers[model_id] = model, network_ui(model, image)
    first_layers = {m: pair for m, pair in first_layers.items() if pair[1] is not None}
    if not first_layers:
        return
    st.subheader("What each first-layer unit looks for")
    st.caption(
        "Each picture is one unit's 784 incoming weights: red where ink excites the unit, blue where ink "
        "holds it back, one shared scale. Sorted by how strongly this input excites the unit. A "
        "convolution's first layer has small filters instead (3×3 in model 6), each one looking at every "
        "patch of the image in turn."
    )
    # Each model's weights under its own column: a model that did not load leaves its column empty.
    for column, model_id in zip(st.columns(len(model_ids), gap="large"), model_ids):
        if model_id in first_layers:
            with column:
                weights_ui(*first_layers[model_id])


METHODS = {
    "Gradient × input": (
        "Each pixel's ink times how much the digit's score rises with it: red ink argued for the digit, "
        "blue ink against it. Empty pixels read zero: this view cannot see ink that is missing."
    ),
    "Occlusion": (
        f"A {attribution.OCCLUSION_PATCH}×{attribution.OCCLUSION_PATCH} patch of the input is blanked at "
        f"every position ({attribution.OCCLUSION_STRIDE} pixels apart): red where blanking made the digit "
        "less likely, blue where it made it more likely."
    ),
}
OWN_ANSWER, NOTHING_ELSE = "its own answer", "nothing else"


def _digit_label(choice: object) -> str:
    return choice if isinstance(choice, str) else f"{app.article(choice)} {choice}"


def models_ui() -> dict[object, saved_models.SavedModel]:
    """Every model the app serves that loads; a calm error for each one that does not."""
    models, errors = app.loaded_models()
    for model_id, message in errors.items():
        app.model_error_ui(model_id, message)
    return models


def why_ui(image: np.ndarray, models: dict[object, saved_models.SavedModel]) -> None:
    """Every model's attribution map for its answer (or a chosen digit), or against a second digit."""
    method_column, why_column, other_column = st.columns(3)
    with method_column:
        method = st.segmented_control("Method", list(METHODS), default="Gradient × input", key="why_method")
        method = method or "Gradient × input"
    why = why_column.selectbox("Why", [OWN_ANSWER, *range(10)], key="why_digit", format_func=_digit_label)
    other = other_column.selectbox(
        "rather than", [NOTHING_ELSE, *range(10)], key="why_other", format_func=_digit_label
    )
    pictures = [(charts.pixel_grid(image, cell=CELL), "The input")]
    same = []  # Models asked why a digit rather than itself: a map of zeros, so a note instead.
    for model_id, model in models.items():
        network = model.network
        answer, _ = network.read(image)
        chosen = answer if why == OWN_ANSWER else int(why)
        against = None if other == NOTHING_ELSE else int(other)
        if chosen == against:
            same.append(app.model_name(model_id))
            continue
        if method == "Occlusion":
            maps = attribution.occlusion(network, image)
            values = (
                maps[chosen] if against is None else attribution.contrast_occlusion(maps, chosen, against)
            )
        elif against is None:
            values = attribution.gradient_times_input(network, image, chosen)
        else:
            values = attribution.contrast_gradient_times_input(network, image, chosen, against)
        question = f"why {chosen}" + ("" if against is None else f" not {against}")
        pictures.append(
            (
                charts.overlay(image, values, CELL, scale=charts.map_scale(values)),
                f"{app.model_name(model_id)} reads {answer}: {question}",
            )
        )
    st.html(charts.image_row(pictures, app.STEP_IMAGE_WIDTH))
    if same:
        st.caption(
            f"{', '.join(same)}: why {other} rather than {other} has no answer (nothing tells a digit from "
            "itself); pick another digit to compare with."
        )
    st.caption(
        METHODS[method] + " With a second digit: red argued for the first rather than the second. "
        f"Each map on its own scale; its strongest {100 - charts.MAP_PERCENTILE}% of pixels at full colour."
    )


def answer_rows(
    models: dict[object, saved_models.SavedModel], images: list[np.ndarray]
) -> list[tuple[str, list[str]]]:
    """What every model reads for each of some images (digit and confidence), one row per model."""
    return [
        (app.model_label(model_id), [reading(model, image) for image in images])
        for model_id, model in models.items()
    ]


def flip_ui(image: np.ndarray, models: dict[object, saved_models.SavedModel]) -> None:
    """The smallest change the search finds that makes the chosen model read another digit."""
    model_column, digit_column = st.columns(2)
    model_ids = list(models)
    model_id = model_column.selectbox(
        "Model", model_ids, key="flip_model", format_func=app.model_label, persist_state="session"
    )
    network, model_name = models[model_id].network, app.model_name(model_id)
    answer, _ = network.read(image)
    target = digit_column.selectbox(
        "Make it read", range(10), index=(answer + 1) % 10, key="flip_target", format_func=_digit_label
    )
    if target == answer:
        st.info(f"{model_name} already reads {app.article(answer)} {answer}; pick another digit.")
        return
    result = counterfactual.flip(network, image, target)
    cell, change_scale = CELL, result.largest_change
    pictures = [
        (charts.pixel_grid(image, cell=cell), f"The input: {model_name} reads {answer}"),
        (charts.pixel_grid(result.edited, cell=cell), "Edited"),
        (
            charts.signed_picture(result.change, cell, scale=change_scale),
            f"The change: red ink added, blue taken away (largest {change_scale:.2f})",
        ),
    ]
    st.html(charts.image_row(pictures, app.STEP_IMAGE_WIDTH))
    if result.succeeded:
        st.markdown(
            f"{model_name} reads the edited image as **{target}** "
            f"({result.probabilities[target]:.0%}): {result.pixels_changed} pixels moved by more than "
            f"{counterfactual.CHANGED_PIXEL}, "
            f"the change's length (L2) is {result.size:.2f} against the input's {result.input_size:.2f}."
        )
    elif result.stopped == counterfactual.NO_GRADIENT:
        st.warning(
            f"The search stopped after {result.steps} steps: no pixel it could still move would make "
            f"{model_name} lean further towards {app.article(target)} {target} (its gradient there is "
            "zero)."
        )
    elif result.reads_target:
        st.warning(
            f"After {result.steps} steps, the most the search takes, {model_name} reads the edited image "
            f"as {app.article(target)} {target} ({result.probabilities[target]:.0%}), but not by the clear "
            "lead the search asks for, so the change was not shrunk."
        )
    else:
        st.warning(
            f"No change within {result.steps} steps, the most the search takes, made {model_name} "
            f"read {app.article(target)} {target}."
        )
    st.markdown("**What every model reads**")
    rows = answer_rows(models, [image, result.edited])
    st.html(charts.answer_table(rows, ["Model", "Your input", "Edited"]))
    st.caption(
        "Found by gradient steps on the input, every pixel kept between 0 and 1, until the chosen model "
        "prefers the new digit clearly; then shrunk back towards the input as far as it stays so."
    )


def damage_ui(image: np.ndarray, models: dict[object, saved_models.SavedModel]) -> None:
    """Switch units off, add weight noise, prune: accuracy on a fixed MNIST sample and this input's answer."""
    model_ids = list(models)
    model_id = st.selectbox(
        "Model", model_ids, key="damage_model", format_func=app.model_label, persist_state="session"
    )
    model = models[model_id]
    layers = model.card.architecture.layers
    switchable = damage.switchable_layers(model.network)  # A pool has no units of its own.
    switched_off = {}
    for column, index in zip(st.columns(max(1, len(switchable))), switchable):
        conv = layers[index].kind == "conv"
        number = sum(layer.kind == layers[index].kind for layer in layers[: index + 1])
        units = column.multiselect(
            f"Switch off maps of convolution {number}" if conv else f"Switch off in hidden layer {number}",
            range(layers[index].units),
            key=f"damage_units_{model_id}_{index}",
            placeholder="none: pick units",
        )
        switched_off[index] = tuple(units)
    share_column, noise_column, prune_column, seed_column = st.columns(4)
    share = share_column.slider("Units off at random (share)", 0.0, 1.0, 0.0, 0.05, key="damage_share")
    noise = noise_column.slider("Weight noise (σ)", 0.0, 2.0, 0.0, 0.1, key="damage_noise")
    prune = prune_column.slider("Smallest weights pruned (share)", 0.0, 1.0, 0.0, 0.05, key="damage_prune")
    seed = int(seed_column.number_input("Seed", 0, 10_000, 0, key="damage_seed"))
    setting = damage.Damage(
        switched_off=switched_off, random_share=share, noise=noise, prune=prune, seed=seed
    )
    broken = damage.damaged(model.network, setting)
    sample = app.damage_sample()
    intact_column, damaged_column, answer_column = st.columns(3)
    if sample is None:
        intact_column.info("The MNIST test images are not installed, so accuracy cannot be measured.")
    else:
        before = app.intact_accuracy(model)
        after = damage.accuracy(broken, *sample)
        intact_column.metric("Intact: MNIST sample", app.percent(before, 1), border=True)
        change = (after - before) * 100
        damaged_column.metric(
            "Damaged: MNIST sample",
            app.percent(after, 1),
            f"{change:+.1f} points",
            # No damage yet: no green arrow for a change of nothing.
            delta_color="normal" if round(change, 1) else "off",
            delta_arrow="auto" if round(change, 1) else "off",
            border=True,
        )
    probabilities = broken.predict_proba(image[None])[0]
    intact_answer, _ = model.network.read(image)
    answer_column.metric(
        "Damaged: this input",
        broken.read(image)[0],
        f"intact read {intact_answer}",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    st.html(charts.probability_bars(probabilities, f"Damaged {app.model_name(model_id)} on this input"))
    st.caption(
        f"Accuracy on a fixed sample of {damage.TEST_SAMPLE_SIZE:,} MNIST test digits. "
        "A unit switched off sends nothing on (in a convolution, a whole feature map); "
        "noise is relative to each layer's own weights; pruning zeroes the smallest weights of each layer. "
        "Nothing is saved: the model on disk stays as it is."
    )


STEP_LABELS = {
    "crop": "Crop to the ink",
    "stroke": "Even stroke width",
    "deskew": "Deskew",
    "scale": f"Scale to {BOX_SIZE}×{BOX_SIZE}",
    "centre": "Centre of mass",
}


def preprocessing_ui(raw: np.ndarray | None, models: dict[object, saved_models.SavedModel]) -> None:
    """Switch preprocessing steps off and see every model's answer change, one step at a time too."""
    if raw is None:
        st.info("The drawing before preprocessing is not at hand: draw it again on the Draw page.")
        return
    chosen = st.pills(
        "Preprocessing steps",
        list(PREPROCESSING_STEPS),
        selection_mode="multi",
        default=list(PREPROCESSING_STEPS),
        format_func=STEP_LABELS.get,
        key="preprocess_steps",
    )
    variants = {"All steps": PREPROCESSING_STEPS, "Your choice": tuple(chosen)}
    for step in PREPROCESSING_STEPS:
        variants[f"No {STEP_LABELS[step].lower()}"] = tuple(s for s in PREPROCESSING_STEPS if s != step)
    inputs = {name: to_mnist(raw, steps) for name, steps in variants.items()}
    # Seven pictures: four pixels per input pixel, so that they fit two rows on a laptop.
    pictures = [(charts.pixel_grid(image, cell=4), name) for name, image in inputs.items()]
    st.html(charts.image_row(pictures, 4 * IMAGE_SIZE))
    rows = []
    for name, image in inputs.items():
        readings = [reading(model, image) for model in models.values()]
        rows.append((name, readings))
    st.html(charts.answer_table(rows, ["Preprocessing", *(app.model_name(model_id) for model_id in models)]))
    st.caption(
        "Every model reads the input made with the steps you keep, and with each step left out in turn: "
        "a step matters for this drawing where the answers change. The models were trained with all five."
    )


def reading(model: saved_models.SavedModel, image: np.ndarray) -> str:
    """A model's answer for one 28x28 input and its confidence, e.g. ``7 (98%)``."""
    answer, confidence = model.network.read(image)
    return f"{answer} ({confidence:.0%})"


VIEWS = ("Layer by layer", "Why this digit", "What would flip it", "Damage lab", "Preprocessing")


app.page_ui()
st.title("Inside the networks")
st.caption(
    "The same input through the networks: every hidden unit's activation and what each first-layer unit "
    "looks for, why each network reads what it reads, what would flip its answer, and what damage it "
    "survives."
)
image, raw, name = source_ui()
if image is not None:
    view = (
        st.segmented_control("Show", VIEWS, default=VIEWS[0], key="inside_view", persist_state="session")
        or VIEWS[0]
    )
    if view == "Layer by layer":
        layers_ui(image, name)
    elif models := models_ui():
        if view == "Why this digit":
            why_ui(image, models)
        elif view == "What would flip it":
            flip_ui(image, models)
        elif view == "Damage lab":
            damage_ui(image, models)
        else:
            preprocessing_ui(raw, models)
