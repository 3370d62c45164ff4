"""Nothing is unpickled or evaluated but the checksum-verified dataset, XSRF protection stays on, and no
HTML is rendered unescaped."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP_SOURCES = [
    ROOT / "streamlit_app.py",
    *sorted((ROOT / "pages").glob("*.py")),
    *sorted((ROOT / "digitdraw").rglob("*.py")),
]

FORBIDDEN = {
    r"\bpickle\.loads?\(": "unpickling outside the restricted unpickler",
    r"allow_pickle\s*=\s*True": "numpy loading pickled objects",
    r"(?<![\w.])eval\(": "eval",
    r"(?<![\w.])exec\(": "exec",
    r"unsafe_allow_html": "HTML rendered without escaping",
    r"\bst\.html\((?!charts\.probability_bars\(|charts\.image_row\(|charts\.answer_table\(|charts\.stroke_timeline\(|charts\.model_answers\(|charts\.first_layer_grid\("
    r"|answers_html\(result, model_id\)\)|model_input_html\(result\)\)"
    r"|_CANVAS_TOOLBAR, unsafe_allow_javascript=True\)|PAGE_STYLE\)"
    r"|_SHOW_JOB\.replace\(\"JOB\", str\(int\(new_job\)\)\), unsafe_allow_javascript=True\)"
    r"|_remember_browser_script\(identifier\), unsafe_allow_javascript=True\)"
    r"|_import_scripts_script\(files\), unsafe_allow_javascript=True\))": (
        "raw HTML other than the probability bars (numbers and an escaped title), rows of PNG images "
        "(base64 and escaped captions), tables of escaped text, the Draw page's answers and pictures (made "
        "of these, with escaped headings), unit grids (numbers, PNG data and a "
        "constant style), the pages' constant style, the canvas toolbar's constant script, the Train "
        "page's script that scrolls to a job (its id a whole number), the browser-id cookie (32 checked "
        "hexadecimal digits) and the import of Streamlit's own script files (checked file names)"
    ),
    r"components\.v1\.html": "raw HTML",
    r"safe_mode\s*=\s*False": "Keras loading arbitrary code",
}


def test_the_app_and_package_never_unpickle_evaluate_or_render_raw_html():
    offences = []
    for path in APP_SOURCES:
        text = path.read_text()
        for pattern, what in FORBIDDEN.items():
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                offences.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offences, offences


def test_the_only_unpickler_is_the_restricted_one_and_it_reads_after_the_checksum():
    data_source = (ROOT / "digitdraw" / "learning" / "data.py").read_text()
    assert "class _NumpyOnlyUnpickler(pickle.Unpickler)" in data_source
    uses = [path for path in APP_SOURCES if re.search(r"^import pickle|^from pickle", path.read_text(), re.M)]
    assert uses == [ROOT / "digitdraw" / "learning" / "data.py"]
    checksum = data_source.index("actual = sha256_file(path)")
    unpickle = data_source.index("safe_unpickle(handle.read())")
    assert checksum < unpickle


def test_streamlit_config_keeps_xsrf_protection_and_limits_uploads():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"].get("enableCORS", True) is True
    # A network of up to four million weights to open; nothing larger reaches the server.
    assert 0 < config["server"]["maxUploadSize"] <= 16
    assert config["browser"]["gatherUsageStats"] is False


def test_serving_predictions_never_imports_tensorflow():
    # The app reads weights with h5py; importing TensorFlow would also mean
    # deserialising Keras configs, which the serving path has no need for.
    script = (
        "import sys, digitdraw, digitdraw.ui.app, digitdraw.jobs;"
        "digitdraw.load_classifier(4);"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_the_script_that_loads_streamlit_s_files_takes_only_file_names():
    from digitdraw.ui import app

    script = app._import_scripts_script(["Metric.MSVuxtnf.js", "PageLink.BERvM-yN.js"])
    assert '["Metric.MSVuxtnf.js", "PageLink.BERvM-yN.js"]' in script
    for name in ['x.js"]);alert(1);//', "../index.html", "Metric.js", "</script>.a.js"]:
        with pytest.raises(ValueError, match="Streamlit script file"):
            app._import_scripts_script([name])
