"""Train a network of your own: design it, queue it for a worker, watch it learn, use it everywhere.

The page only queues jobs and reads their progress (``digitdraw.jobs``); a
worker process trains them (``python -m digitdraw worker``; ``make run``
starts one). The job list is a fragment that polls the queue every
``POLL_SECONDS``, so closing the tab stops nothing and reopening it shows
where every job stands.
"""

from __future__ import annotations

import datetime

import streamlit as st

from digitdraw.jobs import queue as jobs
from digitdraw.learning import kept_split
from digitdraw.learning.config import (
    HIDDEN_LAYERS,
    HIDDEN_UNITS,
    MAX_EPOCHS,
    OPTIMIZERS,
    STUDY_RECIPE,
    STUDY_TRAINING,
    TRAIN_IMAGES,
    NetworkSettings,
)
from digitdraw.serving import saved_models
from digitdraw.serving.networks import (
    ACTIVATION_LABELS,
    CUSTOM_NAME_LENGTH,
    CUSTOM_NAME_RULE,
    HIDDEN_ACTIVATIONS,
    check_custom_name,
    custom_name_like,
)
from digitdraw.ui import app, charts

POLL_SECONDS = 2.0
# An idle worker takes a queued job within a second or so: a job left queued this long, while no job ran,
# started or finished, has no worker to take it.
NO_WORKER_AFTER = datetime.timedelta(seconds=30)
NEW_JOB = "train_new_job"  # The job just queued from this page, whose card is scrolled into view once.
# Scrolls the new job's card into view once it is on the page (it is drawn by the jobs fragment).
_SHOW_JOB = """<script>
(() => {
  const find = (tries) => {
    const card = document.querySelector(".st-key-job_JOB");
    if (card) card.scrollIntoView({behavior: "smooth", block: "center"});
    else if (tries > 0) setTimeout(() => find(tries - 1), 200);
  };
  find(25);
})();
</script>"""
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
TRAINING_IMAGES = (1_000, 2_000, 5_000, 10_000, 20_000, TRAIN_IMAGES[1])
STATE_BADGES = {
    jobs.JobState.QUEUED: ":gray-badge[:material/schedule: queued]",
    jobs.JobState.RUNNING: ":blue-badge[:material/autorenew: running]",
    jobs.JobState.DONE: ":green-badge[:material/check: done]",
    jobs.JobState.STOPPED: ":orange-badge[:material/stop_circle: stopped]",
    jobs.JobState.FAILED: ":red-badge[:material/error: failed]",
}
# The form's widgets and where they start; the study preset overwrites them.
DEFAULTS = {
    "train_name": "",
    "train_layers": 2,
    "train_activation": "relu",
    "train_optimizer": "adam",
    "train_learning_rate": 1e-3,
    "train_batch": 64,
    "train_epochs": 5,
    "train_images": TRAIN_IMAGES[1],
    "train_augment": False,
    "train_seed": 0,
    "train_kept": False,
    "train_kept_repeats": kept_split.DEFAULT_REPEATS,
    **{f"train_units_{layer}": 64 for layer in range(HIDDEN_LAYERS[1])},
}


def _study_recipe() -> None:
    """Fill the form with what the study did (the architecture stays yours)."""
    state = st.session_state
    state.train_optimizer = STUDY_TRAINING["optimizer"]
    state.train_learning_rate = STUDY_RECIPE.activation_learning_rate(state.train_activation)
    state.train_batch = STUDY_TRAINING["batch_size"]
    state.train_epochs = STUDY_TRAINING["epochs"]
    state.train_images = TRAINING_IMAGES[-1]  # All of them, as train_limit None says.
    state.train_augment = STUDY_TRAINING["augmentation"]
    state.train_seed = STUDY_TRAINING["seed"]
    state.train_kept = False  # The study trained on MNIST alone.


def kept_drawings_ui() -> int | None:
    """Whether to learn from the drawings people kept too: how many times each is seen an epoch, or None."""
    sizes = app.kept_part_sizes()
    enough = sizes is not None and sizes.enough
    # The checkbox whole-width: in half a column its long label is cut away.
    chosen = st.checkbox(
        "Also learn from the drawings people kept",
        key="train_kept",
        disabled=not enough,
        help=f"Drawings kept on the Draw page join the MNIST digits of every epoch, augmented like them. "
        f"{kept_split.HELD_OUT_SHARE:.0%} of them, chosen by what each drawing shows once and for all, are "
        "never trained on: they only measure how well the network reads people's hands.",
    )
    if sizes is not None:
        st.caption(app.kept_drawings_note(sizes))
    if not (chosen and enough):
        return None
    low, high = kept_split.REPEATS_RANGE
    left, _ = st.columns(2)
    repeats = left.number_input(
        "Repeats per epoch",
        low,
        high,
        key="train_kept_repeats",
        help="How many times each kept drawing is seen an epoch: a few hundred beside thousands of "
        "MNIST digits would barely count once; more repeats weigh them more, and risk learning those "
        "few by heart.",
    )
    return int(repeats)


def form_ui() -> NetworkSettings | None:
    """The network and how to train it; the settings when Start is pressed and they are sound."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    name = name_input_ui("Name", key="train_name", placeholder="my-net")
    low, high = HIDDEN_LAYERS
    layers = st.segmented_control("Hidden layers", range(low, high + 1), key="train_layers", required=True)
    units = []
    for layer, column in enumerate(st.columns(high)):
        if layer < layers:
            units.append(
                column.number_input(
                    f"Layer {layer + 1} units", *HIDDEN_UNITS, step=8, key=f"train_units_{layer}"
                )
            )
    activation = st.segmented_control(
        "Activation",
        HIDDEN_ACTIVATIONS,
        format_func=ACTIVATION_LABELS.get,
        key="train_activation",
        required=True,
    )
    optimizer = st.selectbox(
        "Optimizer",
        list(OPTIMIZERS),
        format_func=OPTIMIZERS.get,
        key="train_optimizer",
        help="The study's recipe is Adam with a learning rate that decays along a cosine to zero; "
        "Adam here keeps its rate.",
    )
    # Row by row, so that on a phone, where columns stack, each pair still reads in order.
    left, right = st.columns(2)
    learning_rate = left.number_input(
        "Learning rate", min_value=1e-5, max_value=1.0, format="%.4f", step=1e-4, key="train_learning_rate"
    )
    seed = right.number_input("Seed", 0, 2**31 - 1, key="train_seed")
    left, right = st.columns(2)
    batch = left.select_slider("Batch size", BATCH_SIZES, key="train_batch")
    epochs = right.slider("Epochs", 1, MAX_EPOCHS, key="train_epochs")
    left, right = st.columns(2, vertical_alignment="bottom")
    images = left.select_slider(
        "Training images", TRAINING_IMAGES, format_func=lambda count: f"{count:,}", key="train_images"
    )
    augment = right.toggle(
        "Augmentation",
        key="train_augment",
        help="Every epoch sees freshly rotated, sheared, scaled and thickened copies of the images.",
    )
    kept_repeats = kept_drawings_ui()
    with st.container(horizontal=True):
        start = st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start")
        st.button(
            "Study recipe",
            icon=":material/science:",
            on_click=_study_recipe,
            key="train_preset",
            help=f"Adam with a cosine-decaying rate, batch {STUDY_RECIPE.batch_size}, {STUDY_RECIPE.epochs} "
            "epochs, all 50,000 images, augmentation on, seed 0, MNIST alone.",
        )
    if not start:
        return None
    problem = name_problem(name)
    if problem is not None:
        st.error(problem, icon=":material/edit:")
        return None
    try:
        return NetworkSettings(
            name=name.strip(),
            hidden=tuple(int(u) for u in units),
            activation=activation,
            optimizer=optimizer,
            learning_rate=float(learning_rate),
            batch_size=int(batch),
            epochs=int(epochs),
            # All the training images is no limit at all, as the study trained.
            train_limit=None if images == TRAIN_IMAGES[1] else int(images),
            augmentation=augment,
            seed=int(seed),
            kept_repeats=kept_repeats,
        )
    except ValueError as error:
        st.error(f"This network cannot be trained yet: {error}.", icon=":material/edit:")
        return None


def name_input_ui(label: str, key: str, placeholder: str) -> str:
    """A field for a network's name, as long as a name may be, its rule a tap away; returns the text."""
    return st.text_input(
        label,
        key=key,
        placeholder=placeholder,
        help=f"{CUSTOM_NAME_RULE}, unique.",
        max_chars=CUSTOM_NAME_LENGTH,
    )


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a network, with a name close to it that can, in one sentence; None when
    it can (whether it is taken is the queue's to say)."""
    name = name.strip()
    if not name:
        return f"Give the network a name first: {CUSTOM_NAME_RULE}."
    try:
        check_custom_name(name)
    except ValueError:
        like = custom_name_like(name)
        return f"A network's name is {CUSTOM_NAME_RULE}" + (f": `{like}` would do." if like else ".")
    return None


def submit(settings: NetworkSettings) -> None:
    """Queue the network, or say calmly why not; the new job's card, which says where it stands, is then
    brought into view (``jobs_ui``)."""
    try:
        job_id = app.with_queue(lambda queue: queue.submit(settings), None)
    except ValueError as error:
        st.error(f"This network cannot be trained yet: {error}.", icon=":material/edit:")
        return
    if job_id is not None:
        st.session_state[NEW_JOB] = job_id


def describe(settings: NetworkSettings) -> str:
    """The settings in one line."""
    images = f"{settings.train_limit or TRAIN_IMAGES[1]:,}"
    return (
        f"{settings.architecture.summary} · {ACTIVATION_LABELS[settings.activation]} · "
        f"{OPTIMIZERS[settings.optimizer]}, rate {settings.resolved_learning_rate:g} · "
        f"batch {settings.batch_size} · {images} images · "
        f"augmentation {'on' if settings.augmentation else 'off'} · seed {settings.seed} · "
        f"{settings.epochs} epoch{'s' if settings.epochs != 1 else ''}"
        + ("" if settings.kept_repeats is None else f" · kept drawings {settings.kept_repeats}× an epoch")
    )


def _how_long(waited: datetime.timedelta) -> str:
    """A wait in words: whole seconds under a minute, whole minutes after."""
    seconds = int(waited.total_seconds())
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def progress_text(job: jobs.Job, no_worker: bool = False) -> str:
    """Where a job stands, in words; ``no_worker``: no worker has been seen for ``NO_WORKER_AFTER``."""
    if job.state == jobs.JobState.QUEUED:
        waited = datetime.datetime.now(datetime.UTC) - job.created_at
        if no_worker and waited > NO_WORKER_AFTER:
            return (
                f"Waiting for a worker for {_how_long(waited)}: none seems to be running. `make run` starts "
                "one beside the app, and `python -m digitdraw worker` starts one on its own."
            )
        return "Waiting for a worker"
    if job.state == jobs.JobState.RUNNING and job.epoch == 0 and job.batches == 0:
        return "Preparing the data"
    if job.state == jobs.JobState.RUNNING:
        batch = f", batch {job.batch} of {job.batches}" if job.batches else ""
        return f"Epoch {min(job.epoch + 1, job.epochs)} of {job.epochs}{batch}"
    return job.message or job.state


def _stop(job: jobs.Job) -> None:
    app.with_queue(lambda queue: queue.request_stop(job.id), False)
    st.toast(f"Stopping {job.name}: it keeps its best epoch so far.", icon=":material/stop_circle:")


def job_ui(job: jobs.Job, expanded: bool, no_worker: bool = False) -> None:
    """One job: its state, settings, progress, curves and Stop; ``no_worker``: none seen for a while."""
    with st.container(border=True, key=f"job_{job.id}"):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(f"**{job.name}** {STATE_BADGES[job.state]}")
            if job.active:
                # A callback: the stop is asked before the job is read again for this run.
                st.button(
                    "Stop",
                    icon=":material/stop:",
                    key=f"stop_{job.id}",
                    disabled=job.stop_requested,
                    on_click=_stop,
                    args=(job,),
                )
        st.caption(describe(job.settings) if job.settings is not None else "Settings that cannot be trained.")
        if job.active:
            stopping = " · stopping after this batch" if job.stop_requested else ""
            st.progress(job.fraction_done, text=progress_text(job, no_worker) + stopping)
        elif job.message:
            st.caption(job.message)
        if job.history is not None and expanded:
            for column, metric in zip(st.columns(2), ("accuracy", "loss")):
                app.chart_ui(
                    charts.training_curves(job.history, metric, height=300),
                    key=f"job_{metric}_{job.id}",
                    where=column,
                )


def networks_ui() -> None:
    """The networks people trained or opened, each with Download and Delete (the registry's six are not
    listed: they stay; Compare downloads them)."""
    names = [model_id for model_id in app.model_ids() if isinstance(model_id, str)]
    if not names:
        st.caption("None yet: a finished job's network, or one you open, appears here and on every page.")
        return
    models, _ = app.loaded_models()
    for name in names:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.markdown(app.model_label(name))
            if name in models:
                with st.popover("Download", icon=":material/download:"):
                    app.download_ui(name, key=f"download_{name}")
            with st.popover("Delete", icon=":material/delete:"):
                st.write(f"Delete {name}? Every page stops offering it. This cannot be undone.")
                if st.button("Yes, delete it", type="primary", key=f"delete_{name}"):
                    saved_models.delete_custom(name)
                    st.toast(f"Deleted {name}.")
                    st.rerun()
        model = models.get(name)
        if model is not None and model.card.opened is not None:
            st.caption(app.opened_note(model.card.opened))
        kept = model.metrics.kept_drawings if model is not None else None
        if kept is not None:
            st.caption(app.kept_drawings_result(kept))


def open_network_ui() -> None:
    """Open a Keras digit classifier, or a DigitDraw .npz export, as a network of the app."""
    st.subheader("Open a network")
    st.caption(
        "A Keras MNIST classifier saved with Keras 3 (.keras), or a network exported from DigitDraw (.npz): "
        "28x28 or 784 inputs and ten outputs, of Dense, Conv2D, pooling, Flatten, Reshape, Dropout, "
        "BatchNormalization and Rescaling layers. It is checked without running any code from the file, "
        "measured on MNIST, and then shown on every page like the app's own."
    )
    upload = st.file_uploader(
        "Network file", type=["keras", "npz"], key="open_file", max_upload_size=app.MAX_UPLOADED_NETWORK_MB
    )
    name = name_input_ui("Name of the opened network", key="open_name", placeholder="course-net")
    opening = st.button(
        "Open the network", icon=":material/upload_file:", disabled=upload is None, key="open_start"
    )
    if not opening:
        return
    problem = name_problem(name)
    if problem is not None:
        st.error(problem, icon=":material/edit:")
        return
    with st.status(f"Opening {app.plain(upload.name)}…", expanded=True) as status:
        opened, message = app.open_network_file(
            upload.getvalue(), upload.name, name.strip(), lambda step: st.write(app.plain(step))
        )
        status.update(
            label=f"Opened as {name.strip()}" if opened else "Not opened",
            state="complete" if opened else "error",
        )
    if opened:
        st.success(app.plain(message), icon=":material/check:")
    else:
        st.error(f"This file cannot be opened: {app.plain(message)}.", icon=":material/error:")


@st.fragment(run_every=POLL_SECONDS)
def jobs_ui() -> None:
    """Every job, newest first, refreshed while the page is open; the newest two with live curves."""
    listed = app.with_queue(lambda queue: queue.jobs(limit=20), None)
    if listed is None:
        return
    if not listed:
        st.info("No jobs yet: design a network, then press Start.", icon=":material/school:")
    no_worker = any(job.state == jobs.JobState.QUEUED for job in listed) and not app.with_queue(
        lambda queue: queue.worker_seen_since(datetime.datetime.now(datetime.UTC) - NO_WORKER_AFTER), True
    )
    for index, job in enumerate(listed):
        job_ui(job, expanded=index < 2 or job.active, no_worker=no_worker)
    new_job = st.session_state.pop(NEW_JOB, None)
    if new_job is not None:
        st.html(_SHOW_JOB.replace("JOB", str(int(new_job))), unsafe_allow_javascript=True)
    st.subheader("Your networks")
    networks_ui()


app.page_ui()
st.title("Train your own network")
st.caption(
    "Design a network, and a worker trains it on MNIST (and, if you like, on the drawings people kept) while "
    "you watch, epoch by epoch. It is saved like "
    "the app's own six and appears on every page: Draw, Inside, Training curves, Confusion matrix, Compare. "
    "Or open a network trained elsewhere, and download any of yours."
)
design, progress = st.columns([1, 1.4], gap="large")
with design:
    st.subheader("Design")
    settings = form_ui()
    if settings is not None:
        submit(settings)
    open_network_ui()
with progress:
    st.subheader("Jobs")
    jobs_ui()
