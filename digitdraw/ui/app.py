"""Streamlit helpers shared by the pages: model loading, model pickers, error messages, the drawing
canvas with its Clear, sizes and toolbar, the code a first answer needs loaded early, the pause
that sends an answer ahead of the rest of its run, decoding uploaded image files, the drawings
store, the training queue and this browser's anonymous id.

Pages stay thin: they call these ``*_ui`` helpers, which draw widgets and
return values, and ``digitdraw`` for everything else. Models are *not*
cached here: every rerun asks ``digitdraw.serving.inference``, whose one cache keeps
each model until its files change, so a model retrained, replaced, added or
deleted while the app runs shows on the next rerun. What is derived from a
model here (its measured latency) is cached under the model's weights
checksum, which changes with the model. MNIST's test images never change
while the app runs and are cached once. A model that fails to load is
reported for itself, with the command that retrains it, and never stops the
others; a drawings store that is out of reach gives one calm warning, never
an exception.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import PIL.Image
import streamlit as st

from digitdraw.drawings import collect, store
from digitdraw.jobs import queue as jobs
from digitdraw.learning.kept_split import PartSizes, part_sizes
from digitdraw.serving import inference, saved_models
from digitdraw.serving.networks import (
    ACTIVATION_LABELS,
    BEYOND_STUDY,
    CHECKOUT_DIR,
    REGISTRY,
    ModelId,
    Network,
    check_custom_name,
    is_custom,
    saved_models_dir,
)
from digitdraw.serving.preprocess import CANVAS_SIZE, IMAGE_SIZE

T = TypeVar("T")

# A phone's screen is about 360-430 CSS pixels wide, less the page's margins.
PHONE_CANVAS_SIZE = 320
# The Read page's canvas holds a number: on a laptop as wide as the page's column is at 1280 pixels
# (about three digits' width), on a phone the screen's width and tall enough for a finger's digits.
WIDE_CANVAS_SIZE = (800, CANVAS_SIZE)
PHONE_WIDE_CANVAS_SIZE = (PHONE_CANVAS_SIZE, 220)
# A canvas's report carries its picture as a PNG in base64: the widest canvas's pixels, uncompressed,
# are 0.9 MB, 1.2 million characters, so a longer report is not the canvas's.
MAX_CANVAS_REPORT_CHARACTERS = 2 * 2**20
# A drawing of more strokes than this is no digit, nor a number.
MAX_CANVAS_OBJECTS = 2_000
# The canvas's mark of its Clears lies this far above and left of it, out of sight (see clear_marker).
MARKER_TOP = -10
# Clears a session counts: a marker past this is not the canvas's.
MAX_CLEARS = 10**9
# The preprocessing steps and the pixel grid are shown this wide: five pixels per input pixel.
STEP_IMAGE_WIDTH = 5 * IMAGE_SIZE
# Uploads, in megabytes: a photo of a number, and a network to open (four million float32 weights; the
# server's own limit, .streamlit/config.toml's maxUploadSize, is the larger of the two).
MAX_UPLOADED_IMAGE_MB = 5
MAX_UPLOADED_NETWORK_MB = 16
# Opening a network runs the command line in its own process, never the server's: it needs TensorFlow.
OPEN_TIMEOUT_SECONDS = 300
# An uploaded file keeps only these characters of its name, which the network's record shows.
_UNSAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def page_ui() -> None:
    """Call first on every page: makes a deep link to a page open inside the app's navigation.

    Streamlit starts in its old "pages/ folder" mode because this project keeps
    its pages in ``pages/``, and it leaves that mode only once the main script
    has called ``st.navigation``. Until then, on a freshly started server, a
    first visit straight to ``/compare`` would run the page alone, with raw file
    names in the sidebar. This leaves that mode and reruns, so the main script
    runs and the page opens as its navigation defines it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_link_ui(page: str, label: str, icon: str) -> None:
    """A link to another page of the app; nothing when a page runs on its own, without the app's
    navigation (as under AppTest), where there is no page to link to."""
    from streamlit.errors import StreamlitPageNotFoundError

    with contextlib.suppress(StreamlitPageNotFoundError):
        st.page_link(page, label=label, icon=icon)


def loaded_models() -> tuple[dict[ModelId, saved_models.SavedModel], dict[ModelId, str]]:
    """Every saved model that loads (the study's and those people trained), and why each other does not."""
    return inference.load_models()


def prepare_models() -> None:
    """With the page, not with its first drawing: load every model, build the calibrated ones' digit-score
    detectors, and ready the decoder of the canvas's pictures.

    The first stroke after the server started took 70 ms of server CPU against 15 ms for later ones;
    the detectors were 11 ms of it and Pillow importing its image plugins on first use 15 ms.
    """
    models, _ = loaded_models()
    inference.prepare_digit_scores(models.values())
    PIL.Image.preinit()


def model_ids() -> tuple[ModelId, ...]:
    """Every model the pickers offer: the registry's (the study's five, then the CNN beyond it), then the
    networks people trained."""
    return inference.available_model_ids()


def on_phone() -> bool:
    """Whether this browser is a phone's, by its User-Agent (see ``is_phone_agent``)."""
    return is_phone_agent(st.context.headers.get("User-Agent") or "")


def is_phone_agent(user_agent: str) -> bool:
    """Whether a User-Agent string is a phone's: phones say "Mobi" in it (tablets do not).

    The server cannot see the screen, so the User-Agent is all it has to go by.
    """
    return "Mobi" in user_agent


def canvas_size() -> int:
    """The canvas's side in pixels for this browser: larger on a phone, to fill the screen's width."""
    return PHONE_CANVAS_SIZE if on_phone() else CANVAS_SIZE


def chart_ui(figure: Any, key: str, where: Any = st, on_click: Callable[[], None] | None = None) -> None:
    """A Plotly chart that never traps a finger. On a phone a swipe over it scrolls the page: no drag-zoom
    or pan (fixed axes), and no toolbar, which a tap would open over its title and legend. On a laptop a
    drag zooms (a double-click zooms back out) and the toolbar shows on hover. On either, the mouse wheel
    or a two-finger scroll moves the page, never the chart. ``on_click`` hears a click on a point (not on a
    phone), which ``st.session_state[key].selection.points`` then holds."""
    phone = on_phone()
    if phone:
        figure.update_layout(dragmode=False)
        figure.update_xaxes(fixedrange=True)
        figure.update_yaxes(fixedrange=True)
    config = {"scrollZoom": False, "displayModeBar": False if phone else "hover"}
    # Selecting takes a phone's swipe for itself: there the chart only shows.
    if on_click is None or phone:
        where.plotly_chart(figure, key=key, config=config)
    else:
        where.plotly_chart(figure, key=key, config=config, on_select=on_click, selection_mode="points")


def narrow_table_ui(table: Any, phone_columns: list[str], show: Callable[[Any], None]) -> None:
    """A table that fits a phone: there only ``phone_columns`` (the ones that matter), with every column
    one tap away in an expander; elsewhere the whole table. ``show`` draws a table (``st.table``, or
    ``st.dataframe`` with its settings)."""
    if not on_phone():
        show(table)
        return
    show(table[phone_columns])
    with st.expander("Every column"):
        show(table)


def wide_canvas_size() -> tuple[int, int]:
    """The Read page's canvas (width, height) for this browser: as wide as a phone's screen allows."""
    return PHONE_WIDE_CANVAS_SIZE if on_phone() else WIDE_CANVAS_SIZE


def clear_marker(clears: int) -> dict[str, Any]:
    """The canvas object that says how many Clears a drawing has seen: a hidden one-pixel rectangle off
    the canvas, which the canvas keeps, and reports back, with every stroke drawn after it."""
    return {
        "type": "Rect",
        "left": MARKER_TOP - clears,
        "top": MARKER_TOP,
        "width": 1,
        "height": 1,
        "visible": False,
        "selectable": False,
        "evented": False,
    }


def clears_marked(objects: list[Any]) -> int | None:
    """How many Clears the canvas objects' marker says they have seen; None without a marker."""
    for item in objects:
        if (
            isinstance(item, dict)
            and str(item.get("type")).lower() == "rect"
            and item.get("visible") is False
            and item.get("top") == MARKER_TOP
            and isinstance(item.get("left"), int | float)
            and MARKER_TOP - MAX_CLEARS <= item["left"] <= MARKER_TOP  # Neither NaN nor infinite.
        ):
            return round(MARKER_TOP - item["left"])
    return None


def empty_drawing(clears: int) -> dict[str, Any]:
    """An empty drawing for the canvas's ``initial_drawing``, marked with the number of Clears.

    The canvas reloads itself whenever this value changes, so marking clears in
    it empties the canvas without mounting a new one; and every report the
    canvas sends afterwards carries the mark, so a report sent before a Clear,
    which can arrive after it, is known for what it is.
    """
    return {"objects": [clear_marker(clears)]}


def drawing_canvas_ui(
    key: str, width: int, height: int, stroke_width: int
) -> tuple[np.ndarray, bytes] | None:
    """A canvas to draw on in black ink, which ``clear_canvas_ui`` empties in place; its RGBA image and
    that image's PNG, or None while it is empty or just cleared.

    Clear does not mount a new canvas under a new key: with remounting, drawings
    vanished when several sessions cleared and drew again at once (docs/performance.md).
    The session keeps a record of the drawing, written from each of the canvas's reports
    (``_record_report``): in the report's callback, which Streamlit runs before whatever run
    the report comes with, on this page or another, so that a report that arrives as the
    user leaves the page still counts; and from the canvas's value as the page runs, which
    is how a new session (after a server's restart) learns what its canvas shows. Only a
    report marked with the session's number of Clears is recorded (``clear_marker``). A new
    session counts from 0, and Streamlit hands it the canvas's value only once the canvas is
    drawn: a canvas cleared before its server restarted is emptied by the new one.
    The strokes survive a visit to another page: the canvas is mounted afresh on the
    way back (its value is gone from the session then), so it is given them as its
    initial drawing, and the picture they made stands for it until it reports again.
    """
    # Imported here: the component registers its frontend on import, which needs a running server.
    from streamlit_drawable_canvas import st_canvas

    state = st.session_state
    clears, strokes, initial = f"{key}_clears", f"{key}_strokes", f"{key}_initial"
    state.setdefault(clears, 0)
    if key not in state and state.get(strokes):  # Back from another page with a drawing.
        # A new value each time: the canvas loads a drawing whenever its initial drawing changes.
        restores = state.get(initial, {}).get("restores", 0) + 1
        state[initial] = {"objects": state[strokes], "restores": restores}
    st_canvas(
        stroke_width=stroke_width,
        stroke_color="#111111",
        background_color="#FFFFFF",
        height=height,
        width=width,
        drawing_mode="freedraw",
        initial_drawing=state.get(initial) or empty_drawing(state[clears]),
        return_image_data=True,
        on_change=functools.partial(_canvas_reported, key, width, height),
        key=key,
    )
    _record_report(key, state.get(key), width, height)
    return state.get(f"{key}_last")


def clear_canvas_ui(key: str, then: Callable[[], None] | None = None) -> None:
    """One click empties ``drawing_canvas_ui(key, ...)`` in place, then calls ``then``."""
    st.button(
        "Clear the canvas",
        icon=":material/ink_eraser:",
        on_click=_clear_canvas,
        args=(key, then),
        key=f"{key}_clear",
    )


def _report_objects(value: Any) -> list[Any] | None:
    """A canvas report's objects, or None if it is not shaped like one."""
    drawing = value.get("drawing") if isinstance(value, dict) else None
    raw = drawing.get("raw") if isinstance(drawing, dict) else None
    objects = raw.get("objects") if isinstance(raw, dict) else None
    return objects if isinstance(objects, list) else None


def canvas_report(value: Any, width: int, height: int) -> tuple[list[Any], tuple[np.ndarray, bytes] | None]:
    """A canvas report's objects and the picture they make (RGBA, PNG), None without a stroke; ValueError
    for a report that is not the canvas's: malformed, or a picture that is not ``width`` by ``height``."""
    objects = _report_objects(value)
    if objects is None:
        raise ValueError("expected a canvas report with a list of strokes")
    if len(objects) > MAX_CANVAS_OBJECTS:
        raise ValueError(f"expected at most {MAX_CANVAS_OBJECTS:,} strokes on the canvas")
    if clears_marked(objects) is None:
        raise ValueError("expected the canvas's mark of how many times it was cleared")
    if len(objects) == 1:  # The mark alone: an empty canvas.
        return objects, None
    data = value["drawing"].get("data")
    if data is None:
        raise ValueError("expected the picture of the strokes with them")
    if not isinstance(data, str) or ";base64," not in data:
        raise ValueError("expected the canvas's picture as a PNG data URL")
    if len(data) > MAX_CANVAS_REPORT_CHARACTERS:
        raise ValueError(
            f"expected the canvas's picture in at most {MAX_CANVAS_REPORT_CHARACTERS:,} characters"
        )
    from digitdraw.serving.images import load_image

    try:
        png = base64.b64decode(data.split(";base64,", 1)[1], validate=True)
    except binascii.Error as error:
        raise ValueError("expected the canvas's picture in base64") from error
    image = load_image(png, max_pixels=width * height)
    if image.shape == (height, width, 3):  # Opaque: the canvas paints its white background.
        image = np.dstack([image, np.full((height, width), 255, np.uint8)])
    if image.shape != (height, width, 4):
        raise ValueError(f"expected the canvas's picture as {width}x{height} RGBA, not {image.shape}")
    return objects, ((image, png) if image[:, :, 3].any() else None)


def _canvas_reported(key: str, width: int, height: int) -> None:
    _record_report(key, st.session_state.get(key), width, height)


def _record_report(key: str, value: Any, width: int, height: int) -> None:
    """Record what a canvas report holds: its strokes, and the picture they make.

    A report sent before a Clear can come in after it (the canvas sends a stroke
    a fifth of a second after the pen lifts), and the canvas's value is the old
    drawing until the emptied canvas reports: a report marked with fewer Clears
    than the session has seen is stale, and goes unrecorded. So is a report that
    is not the canvas's, and the value a canvas mounted with restored strokes
    has before it reports (no picture).
    """
    state = st.session_state
    objects = _report_objects(value)
    if objects is None or clears_marked(objects) != state.get(f"{key}_clears", 0):
        return  # Not the canvas's, or stale: its picture need not be decoded.
    data = value["drawing"].get("data")
    if data is not None and data == state.get(f"{key}_recorded"):
        return  # Recorded already: the callback and the page's run see the same report.
    try:
        objects, picture = canvas_report(value, width, height)
    except ValueError:
        return
    state[f"{key}_recorded"] = data
    if picture is None:
        for kept in (f"{key}_strokes", f"{key}_last"):
            state.pop(kept, None)
    else:
        state[f"{key}_strokes"], state[f"{key}_last"] = objects, picture


def _clear_canvas(key: str, then: Callable[[], None] | None) -> None:
    state = st.session_state
    state[f"{key}_clears"] += 1
    for kept in (f"{key}_strokes", f"{key}_last", f"{key}_initial", f"{key}_recorded"):
        state.pop(kept, None)
    if then is not None:
        then()


# streamlit-drawable-canvas keeps its toolbar invisible (opacity 0) over the top right of
# the canvas until the mouse hovers the canvas, and the invisible toolbar takes the
# pointer: a first stroke that starts there on a fresh page is lost, and on a phone,
# which has no hover, every one is. Its Edit toggle turns the pen into a tool that selects
# and moves strokes, which a digit has no use for: a stroke drawn after it is never drawn,
# with nothing to say why. The component's styles live in its own shadow root, so this
# script adds rules there that keep the toolbar above the canvas and hide the toggle.
_CANVAS_TOOLBAR = """
<script>
(() => {
  const rule = ".dc-toolbar { top: auto !important; bottom: 100%; } "
    + ".dc-icon-button[aria-label='Edit'], .dc-toolbar-separator { display: none !important; }";
  let retries = 0;
  const apply = () => {
    let waiting = false;
    for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
      const root = host.shadowRoot;
      if (!root || !root.querySelector(".dc-toolbar")) {
        waiting = true;  // Mounted, but its shadow root or toolbar is not there yet.
      } else if (!root.querySelector("style[data-digitdraw]")) {
        const style = document.createElement("style");
        style.dataset.digitdraw = "toolbar";
        style.textContent = rule;
        root.appendChild(style);
      }
    }
    // A component fills its shadow root after its host joins the page, and nothing in the page
    // changes then for the observer below to see: look again a little later, for a while.
    if (waiting && retries++ < 100) setTimeout(apply, 100);
  };
  apply();
  if (!window.digitdrawToolbarObserver) {
    window.digitdrawToolbarObserver = new MutationObserver(apply);
    window.digitdrawToolbarObserver.observe(document.body, { childList: true, subtree: true });
  }
})();
</script>
"""


def canvas_toolbar_ui() -> None:
    """Keep the canvas component's toolbar above the canvas, its Edit toggle hidden (see above)."""
    st.html(_CANVAS_TOOLBAR, unsafe_allow_javascript=True)


# Streamlit's browser code for a kind of element is fetched, compiled and run when a page first
# shows one. On the Draw page that is the first stroke: the answer (a metric), the correction
# pills and the link to the Inside page, ten files with what they import, made a fresh
# session's first answer about 100 ms slower than its next ones. Importing them while the page
# opens spares the first answer that wait; once the browser is idle, so that the page's own
# loading goes first. Their names carry a hash of their contents, so they are read from the
# installed Streamlit, and resolved against the address of Streamlit's own main script, as
# Streamlit resolves them itself, so that both load one and the same module.
FIRST_ANSWER_ELEMENTS = ("Metric", "ButtonGroup", "PageLink")
STREAMLIT_SCRIPTS = Path(st.__file__).parent / "static" / "static" / "js"
_IMPORT_SCRIPTS = """
<script>
(() => {
  const main = document.querySelector('script[type="module"][src*="static/js/index."]');
  if (!main) return;
  const load = () => {
    for (const file of FILES) import(new URL(file, main.src).href).catch(() => {});
  };
  if (window.requestIdleCallback) window.requestIdleCallback(load, { timeout: 1000 });
  else setTimeout(load, 200);
})();
</script>
"""


def element_scripts(kinds: Iterable[str]) -> list[str]:
    """The file names of Streamlit's browser code for these kinds of element, in the installed Streamlit."""
    kinds = set(kinds)
    return sorted(
        name for name in os.listdir(STREAMLIT_SCRIPTS) if name.endswith(".js") and name.split(".")[0] in kinds
    )


# A script file of Streamlit's: a kind of element, the hash of its contents, ".js".
_SCRIPT_FILE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.js")


def _import_scripts_script(files: list[str]) -> str:
    """The page script that imports these files of Streamlit's (checked names only: it runs unescaped)."""
    for name in files:
        if not _SCRIPT_FILE.fullmatch(name):
            raise ValueError(f"a Streamlit script file is named like 'Metric.MSVuxtnf.js', got {name!r}")
    return _IMPORT_SCRIPTS.replace("FILES", json.dumps(files))


def preload_first_answer_ui() -> None:
    """Load the browser code of what a first stroke shows while the page opens (see above)."""
    files = element_scripts(FIRST_ANSWER_ELEMENTS)
    if files:
        st.html(_import_scripts_script(files), unsafe_allow_javascript=True)


# The browser draws every element that has reached it in one pass, and the elements a stroke sends
# after its answer (the keep controls, every model's answer, what the model sees) take it some 30 ms to
# draw. A run that pauses this long after the answer lets the answer reach the browser alone, so that
# it is on screen before the rest arrive. The pause must outlast the server's own flush of what the run
# has made (every 5 ms, and the time the run's thread holds the interpreter) and the browser's drawing
# of the answer: 5 ms gained nothing, 15 to 40 ms gained alike at the median, and 40 ms brought the p95
# down to the floor page's, where 20 ms left it 37 ms above (docs/performance.md). A phone draws more
# slowly than the desktop browser measured, so the longer pause. The run's thread sleeps: it costs no CPU.
ANSWER_HEAD_START_SECONDS = 0.04


def answer_head_start() -> None:
    """Pause the run so that the browser gets, and draws, what the run has made so far on its own."""
    time.sleep(ANSWER_HEAD_START_SECONDS)


# An anonymous id for this browser, kept in a cookie so that "my drawings" survive a reload.
BROWSER_COOKIE = "digitdraw_browser"
_BROWSER_ID = re.compile(r"[0-9a-f]{32}")


def browser_id() -> str:
    """This browser's anonymous id: from its cookie, or new (and remembered by ``remember_browser_ui``)."""
    if "browser_id" not in st.session_state:
        cookie = _browser_cookie()
        st.session_state.browser_id = cookie if _BROWSER_ID.fullmatch(cookie) else secrets.token_hex(16)
    return st.session_state.browser_id


def _browser_cookie() -> str:
    cookie = st.context.cookies.get(BROWSER_COOKIE)
    return cookie if isinstance(cookie, str) else ""  # No cookie, or no browser (AppTest).


def _remember_browser_script(identifier: str) -> str:
    if not _BROWSER_ID.fullmatch(identifier):
        raise ValueError("a browser id is 32 hexadecimal digits")
    year = 365 * 24 * 3600
    cookie = f"{BROWSER_COOKIE}={identifier}; max-age={year}; path=/; SameSite=Lax"
    return f'<script>document.cookie = "{cookie}";</script>'


def remember_browser_ui() -> None:
    """Store this browser's id in its cookie, once, if it is not there yet."""
    identifier = browser_id()
    if st.context.cookies.get(BROWSER_COOKIE) != identifier and not st.session_state.get(
        "browser_remembered"
    ):
        st.session_state.browser_remembered = True
        st.html(_remember_browser_script(identifier), unsafe_allow_javascript=True)


def _with_store(action: Callable[[store.Store], T], failed: T, warn: bool = True) -> T:
    """Run one action on the drawings store; ``failed`` when it cannot be done, after one calm warning
    if ``warn``."""
    try:
        return action(store.open_store())
    except (store.StoreError, ValueError) as error:
        if warn:
            store_warning_ui(error)
        return failed


def with_queue(action: Callable[[jobs.JobQueue], T], failed: T) -> T:
    """Run one action on the training queue; ``failed`` after one calm warning when it cannot be done.

    A ValueError (a name already taken, say) is the caller's to explain, and passes through.
    """
    try:
        return action(jobs.open_queue())
    except store.StoreError as error:
        st.warning(
            f"The training queue cannot be reached right now ({error}). Drawing works as before.",
            icon=":material/cloud_off:",
        )
        return failed


def store_warning_ui(error: Exception) -> None:
    """Say, in one sentence, that the drawings store is out of reach; drawing goes on."""
    st.warning(
        f"Your drawings cannot be kept right now ({error}). Drawing works as before.",
        icon=":material/cloud_off:",
    )


def keep_drawing(
    classification: inference.Classification, label: int, canvas_png: bytes | None
) -> int | None:
    """Keep a drawing with the label the user gave it; its id, or None after a calm warning."""
    return _with_store(
        lambda kept: kept.save(collect.record(classification, label, browser_id(), canvas_png)), None
    )


@st.cache_data(show_spinner=False, max_entries=4)
def _decoded(data: bytes) -> np.ndarray:
    from digitdraw.serving.images import UPLOAD_FORMATS, load_image

    return load_image(data, formats=UPLOAD_FORMATS)


def image_file_ui(data: bytes | None) -> np.ndarray | None:
    """An uploaded or photographed file as an array; None, after one calm sentence, if it cannot be read.

    Decoded once per file (a 12-megapixel JPEG takes a good part of a second),
    not on every rerun a tap causes.
    """
    if data is None:
        return None
    try:
        return _decoded(data)
    except ValueError as error:
        st.error(
            f"That file cannot be read: {error}. A PNG, JPEG, WebP or BMP photo of a number works.",
            icon=":material/broken_image:",
        )
        return None


def kept_before(classification: inference.Classification) -> tuple[int, int] | None:
    """The (id, label) under which this browser already kept this very drawing, or None; None too when
    the store is out of reach, without a word: nobody asked to keep anything yet."""
    return _with_store(lambda kept: kept.kept_as(browser_id(), classification.image), None, warn=False)


def forget_drawing(drawing_id: int) -> None:
    """Delete one of this browser's kept drawings (a calm warning if the store is out of reach)."""
    forget_drawings([drawing_id])


def forget_drawings(drawing_ids: list[int]) -> int:
    """Delete some of this browser's kept drawings; returns how many went."""
    return _with_store(lambda kept: sum(kept.delete(i, browser_id()) for i in drawing_ids), 0)


def forget_my_drawings() -> int:
    """Delete every drawing this browser kept; returns how many went."""
    return _with_store(lambda kept: kept.delete_session(browser_id()), 0)


def kept_drawings(mine: bool, newest: int | None = None) -> list[store.Drawing] | None:
    """This browser's kept drawings (or everyone's), oldest first, only the ``newest`` N when given; None
    after a calm warning."""
    return _with_store(lambda kept: kept.drawings(browser_id() if mine else None, newest), None)


def kept_digit_counts(mine: bool) -> dict[int, int] | None:
    """How many drawings of each digit this browser (or everyone) kept, counted by the database; None after
    a calm warning."""
    return _with_store(lambda kept: kept.digits_kept(browser_id() if mine else None), None)


def kept_part_sizes() -> PartSizes | None:
    """How the drawings kept in the store would split for training (from their digests alone); None after a
    calm warning when the store is out of reach."""
    return _with_store(lambda kept: part_sizes(kept.digests()), None)


def kept_drawings_note(sizes: PartSizes) -> str:
    """One sentence on how the kept drawings would split, or on why there are too few to learn from."""
    return f"{sizes.describe()}." if sizes.enough else f"Not yet: {sizes.shortfall()}."


def kept_drawings_result(record: saved_models.KeptDrawingsRecord) -> str:
    """What a network trained on kept drawings learned from and how it reads the held-out ones, in words."""
    line = (
        f"Learned from {record.trained:,} kept drawings (each {record.repeats}× an epoch); reads "
        f"{percent(record.accuracy)} of the {record.held_out:,} held out"
    )
    if record.accuracy_before is not None:
        line += f", the network before it {percent(record.accuracy_before)}"
    return line + "."


def kept_drawings_cell(record: saved_models.KeptDrawingsRecord | None) -> str:
    """A table cell: the held-out accuracy on kept drawings and of how many, or a dash for a model trained
    on MNIST alone."""
    return percent(None) if record is None else f"{percent(record.accuracy)} of {record.held_out:,}"


def classify_drawing(image: np.ndarray | None) -> inference.Classification | None:
    """Every model's answer for a canvas image; None before anything is drawn."""
    if image is None:
        return None
    return inference.classify(image)


@st.cache_data(show_spinner=False)
def mnist_test_set() -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST's 10,000 test images and labels, or None if the data is not installed."""
    from digitdraw.learning.data import DataError, load_mnist

    try:
        return load_mnist()[1]
    except DataError:
        return None


def latency_microseconds(model: saved_models.SavedModel) -> float:
    """Median time of one single-image forward pass of a model on this server, in microseconds."""
    return _latency_microseconds(model.card.model_sha256, model.card.model_id)


@st.cache_data(show_spinner=False)
def _latency_microseconds(model_sha256: str, model_id: ModelId, repeats: int = 200) -> float:
    # Keyed by the weights' checksum: a retrained model is measured afresh.
    network = inference.load_classifier(model_id)
    image = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    image[0, 4:24, 12:16] = 1.0
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        network.predict_proba(image)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings) * 1e6)


def dead_on_mnist(model: saved_models.SavedModel) -> list[np.ndarray] | None:
    """Per hidden layer, the units no MNIST test image wakes (None without the data); cached per weights."""
    return _dead_on_mnist(model.card.model_sha256, model.card.model_id)


@st.cache_data(show_spinner="Running the 10,000 MNIST test images through the network…")
def _dead_on_mnist(model_sha256: str, model_id: ModelId) -> list[np.ndarray] | None:
    # Keyed by the weights' checksum, like the latency: a retrained model is examined afresh.
    from digitdraw.explaining import inside

    images = mnist_test_inputs()
    return None if images is None else inside.never_active(inference.load_classifier(model_id), images)


@st.cache_data(show_spinner="Preprocessing the 10,000 MNIST test images…")
def mnist_test_inputs() -> np.ndarray | None:
    """MNIST's test images as the models see them (through ``to_mnist``), or None without the data: from the
    cache training leaves when there is one (preprocessing all 10,000 takes seconds, minutes under load)."""
    from digitdraw.learning.data import DataError, load_mnist
    from digitdraw.learning.train import cached_test_inputs

    try:
        splits = load_mnist()
    except DataError:
        return None
    cached = cached_test_inputs(splits)
    return cached if cached is not None else inference.classify_batch(splits[1][0], []).images


def intact_accuracy(model: saved_models.SavedModel) -> float | None:
    """The model's accuracy on the damage lab's sample (None without the data); cached per weights."""
    return _intact_accuracy(model.card.model_sha256, model.card.model_id, model.network)


@st.cache_data(show_spinner=False)
def _intact_accuracy(model_sha256: str, model_id: int, _network: Network) -> float | None:
    # Keyed by the weights' checksum, like dead_on_mnist: a retrained model is scored afresh. The
    # network itself (underscored: not hashed) is the one the page has loaded.
    from digitdraw.explaining import damage

    sample = damage_sample()
    return None if sample is None else damage.accuracy(_network, *sample)


@st.cache_data(show_spinner=False)
def damage_sample() -> tuple[np.ndarray, np.ndarray] | None:
    """The damage lab's fixed sample of preprocessed MNIST test images and labels (None without data)."""
    from digitdraw.explaining import damage

    images, test_set = mnist_test_inputs(), mnist_test_set()
    return None if images is None or test_set is None else damage.fixed_sample(images, test_set[1])


def current_drawing() -> np.ndarray | None:
    """The 28x28 model input of the drawing last read on the Draw page, in this session."""
    return st.session_state.get(CURRENT_DRAWING_KEY)


def current_canvas() -> np.ndarray | None:
    """The drawing last read on the Draw page as the canvas gave it (before preprocessing), if any."""
    return st.session_state.get(CURRENT_CANVAS_KEY)


def remember_drawing(classification: inference.Classification | None, canvas: np.ndarray | None) -> None:
    """Keep the Draw page's current model input, and the canvas it came from, for the other pages."""
    if classification is not None and not classification.is_blank:
        st.session_state[CURRENT_DRAWING_KEY] = classification.image
        st.session_state[CURRENT_CANVAS_KEY] = canvas


CURRENT_DRAWING_KEY = "current_drawing"
CURRENT_CANVAS_KEY = "current_canvas"


def article(digit: object) -> str:
    """The article a digit's name takes: "an" for an 8 (an eight), "a" for any other."""
    return "an" if str(digit) == "8" else "a"


def model_name(model_id: ModelId) -> str:
    """A model's short name, for narrow tables whose page has a picker with the full label: 'Model 4', or
    the name someone gave their network."""
    return str(model_id) if is_custom(model_id) else f"Model {model_id}"


def model_label(model_id: ModelId) -> str:
    """How a model is named in every picker: id (or name), architecture and activation."""
    if not is_custom(model_id):
        return REGISTRY[model_id].name
    try:
        architecture = inference.load_saved_model(model_id).card.architecture
    except saved_models.SavedModelError:
        return f"{model_id} · unavailable"
    activation = ACTIVATION_LABELS.get(architecture.hidden_activation, architecture.hidden_activation)
    return f"{model_id} · {architecture.summary} · {activation}"


def model_picker_ui(
    label: str = "Model",
    key: str = "model",
    default: ModelId = 4,
    label_visibility: str = "visible",
    width: int | str = "stretch",
) -> ModelId:
    """A model selector whose options show architecture and activation; returns the model id. The choice
    lasts through visits to other pages (Streamlit's ``persist_state``)."""
    options = model_ids()
    chosen = st.session_state.get(key)
    if chosen is not None and chosen not in options:
        # A trained network chosen earlier may have been deleted since (here or in another session).
        st.session_state.pop(key, None)
        chosen = None
    if chosen is None:
        chosen = default if default in options else options[0]
    # The widget's own default is the model chosen, not the first option: the browser falls back to it
    # when it mounts the selector afresh, as it did on the Read page after a third photo, which
    # otherwise switched the page to Model 1 on its own.
    return st.selectbox(
        label,
        options,
        index=options.index(chosen),
        key=key,
        format_func=model_label,
        label_visibility=label_visibility,
        width=width,
        persist_state="session",
    )


def download_ui(model_id: ModelId, key: str) -> None:
    """Buttons that download a network as a Keras file, as NumPy arrays, and its model card; each file is
    made when its button is pressed (``learning.export``)."""
    from digitdraw.learning import export

    stem = export.file_stem(model_id)

    def made(build: Callable[[saved_models.SavedModel], bytes | str]) -> Callable[[], bytes | str]:
        return lambda: build(inference.load_saved_model(model_id))

    with st.container(horizontal=True):
        for label, build, suffix, mime in (
            (".keras", export.keras_bytes, "keras", "application/zip"),
            (".npz", export.npz_bytes, "npz", "application/zip"),
            ("Model card", export.model_card, "md", "text/markdown"),
        ):
            st.download_button(
                label,
                made(build),
                file_name=f"{stem}.{suffix}",
                mime=mime,
                key=f"{key}_{suffix}",
                icon=":material/download:",
                on_click="ignore",
            )


def open_network_file(
    data: bytes, file_name: str, name: str, on_step: Callable[[str], None]
) -> tuple[bool, str]:
    """Open an uploaded network with ``python -m digitdraw models add`` in a process of its own; whether it
    worked, and the command's last line (what was decided, or the one sentence why not)."""
    import subprocess
    import sys
    import tempfile
    import threading

    try:
        check_custom_name(name)
    except ValueError as error:
        return False, str(error)
    if len(data) > MAX_UPLOADED_NETWORK_MB * 2**20:
        return False, f"the file is larger than {MAX_UPLOADED_NETWORK_MB} MB"
    safe_name = _UNSAFE_FILE_NAME.sub("-", Path(file_name).name)[-100:].lstrip(".-") or "network.keras"
    timed_out = threading.Event()
    with tempfile.TemporaryDirectory(prefix="digitdraw-open-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(data)
        command = [sys.executable, "-m", "digitdraw", "models", "add", str(path), f"--name={name}"]
        command += ["--root", str(saved_models_dir())]
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        # Its errors go to a file, not a pipe, which TensorFlow's warnings could fill and stall it on.
        with open(Path(folder) / "errors.txt", "w+") as errors:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=environment,
                cwd=CHECKOUT_DIR,  # Where ``-m digitdraw`` is found, wherever the server started.
            )
            watchdog = threading.Timer(OPEN_TIMEOUT_SECONDS, lambda: (timed_out.set(), process.kill()))
            watchdog.start()
            last = ""
            try:
                for line in process.stdout:
                    if line.startswith("  "):
                        on_step(line.strip())
                    elif line.strip():
                        last = line.strip()
                process.wait()
            finally:
                # A rerun of the page (the person clicked on) stops this run: the command stops with it.
                watchdog.cancel()
                if process.poll() is None:
                    process.kill()
                    process.wait()
                process.stdout.close()
            errors.seek(0)
            messages = errors.read()
    if timed_out.is_set():
        return False, f"opening took longer than {OPEN_TIMEOUT_SECONDS} s and was stopped"
    if process.returncode != 0:
        sentence = next(
            (line for line in messages.splitlines() if line.startswith("python -m digitdraw")), ""
        )
        return False, sentence.split(": ", 1)[-1] or "the file could not be opened (the command stopped)"
    return True, last


# Characters Markdown gives a meaning to; text from a file is shown with each one escaped.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>#|~$])")


def plain(text: str) -> str:
    """Text from a file or a command, escaped so that Markdown shows it as it is (no link, no emphasis)."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def opened_note(opened: saved_models.OpenedRecord) -> str:
    """Where an opened network came from and how it was read, in a sentence."""
    return (
        f"Opened from {plain(opened.file_name)}: its output read as {opened.output}, its input as "
        f"{opened.input_scaling}; not trained here, so it has no training curves."
    )


def model_error_ui(model_id: ModelId, message: str) -> None:
    """Explain that one model is unavailable and how to rebuild it."""
    st.error(
        # Named without model_label's own "unavailable", which would say it twice.
        f"**{model_id if is_custom(model_id) else model_label(model_id)} is unavailable.** {message}. "
        "The other models keep working.",
        icon=":material/error:",
    )


def require_model_ui(model_id: ModelId) -> saved_models.SavedModel | None:
    """The loaded model, or None after showing why it cannot be used."""
    models, errors = loaded_models()
    if model_id in models:
        return models[model_id]
    model_error_ui(model_id, errors.get(model_id, "It could not be loaded."))
    return None


def percent(value: float | None, digits: int = 2) -> str:
    """A fraction shown as a percentage, or a dash when there is none."""
    return "–" if value is None else f"{value:.{digits}%}"


def _fraction(percentage: float | None) -> float | None:
    return None if percentage is None else percentage / 100


def table_name(model: saved_models.SavedModel) -> str:
    """A model's name in the Compare page's tables: the study's networks and one's own by their id, one of
    the registry's beyond the study saying so."""
    spec = model.spec
    model_id = model.card.model_id
    return str(model_id) if spec is None or spec.in_study else f"{model_id} ({BEYOND_STUDY})"


def comparison_rows() -> list[dict[str, Any]]:
    """One row of published and measured numbers per loaded model, for the dashboard."""
    models, _ = loaded_models()
    rows = []
    for model_id, model in models.items():
        accuracy = model.metrics.accuracy
        spec = model.spec  # None for a network someone trained: the study has no numbers for it.
        rows.append(
            {
                "model_id": model_id,
                "model": table_name(model),
                # Short, for the ranking chart, whose names would otherwise take most of a phone's width.
                "label": model_name(model_id),
                "architecture": model.card.architecture.summary,
                "activation": ACTIVATION_LABELS.get(
                    model.card.architecture.hidden_activation, model.card.architecture.hidden_activation
                ),
                "study_train": _fraction(spec.study_train_accuracy if spec else None),
                "train": accuracy["train"],
                "study_validation": _fraction(spec.study_validation_accuracy if spec else None),
                "validation": accuracy["validation"],
                "test": accuracy["test"],
                "drawn": accuracy["drawn"],
                "parameters": model.card.parameters,
                "training_seconds": model.card.training_seconds,
                "latency_us": latency_microseconds(model),
                # The registry's models name their training recipe; a designed network has its own settings.
                "recipe": model.card.config.get("recipe", "study") if spec else None,
                "baseline": model.metrics.baseline,
                # None for a model trained on MNIST alone.
                "kept_drawings": model.metrics.kept_drawings,
                "opened": model.card.opened is not None,
            }
        )
    return rows


def calibration_rows() -> list[dict[str, Any]]:
    """Per calibrated model: temperature, threshold, and per set measured (MNIST test, drawn digits, digits by
    other hands) reliability and ECE before and after, accuracy and the share turned away."""
    models, _ = loaded_models()
    rows = []
    for model_id, model in models.items():
        calibration = model.calibration
        if calibration is None:
            continue
        figures = calibration.reliability
        rows.append(
            {
                "model_id": model_id,
                "model": table_name(model),
                "temperature": calibration.temperature,
                "ece_test_raw": figures["test"]["raw"].ece,
                "ece_test_calibrated": figures["test"]["calibrated"].ece,
                "ece_drawn_raw": figures["drawn"]["raw"].ece,
                "ece_drawn_calibrated": figures["drawn"]["calibrated"].ece,
                "novelty_method": calibration.novelty.method,
                "threshold": calibration.novelty.threshold,
                # The model whose score this one's digit score reads (a committee), or None.
                "committee_member": (
                    calibration.novelty.committee.model_id
                    if calibration.novelty.committee is not None
                    else None
                ),
                "reliability": figures,
                # Per set measured: the share read right, and the share the digit score turned away.
                "accuracy": {name: figure["raw"].share_right() for name, figure in figures.items()},
                "turned_away": dict(calibration.novelty.turned_away),
            }
        )
    return rows
