"""The architecture a reader should see at a glance, beyond the import contracts (test_layers.py): pages
stay thin, constants are owned by one module, and only tests are named test_*."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = sorted((ROOT / "digitdraw" / "ui").glob("*.py"))
CORE = sorted(p for p in (ROOT / "digitdraw").rglob("*.py") if p not in UI and "migrations" not in p.parts)
PAGES = [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]
SCRIPTS = [*sorted((ROOT / "benchmarks").glob("*.py")), *sorted((ROOT / "experiments").glob("*.py"))]
NON_TEST_SOURCES = [*CORE, *UI, *PAGES, *SCRIPTS]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_ui_subpackage_and_pages_do_no_preprocessing_or_model_maths_of_their_own():
    # OpenCV belongs to preprocessing; only the figures module uses it, to enlarge images for display.
    for path in [*PAGES, *UI]:
        if path.name != "charts.py":
            assert "cv2" not in _imports(path), path


def test_no_function_outside_tests_is_named_like_a_test():
    named = [
        f"{path.relative_to(ROOT)}:{node.name}"
        for path in NON_TEST_SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ]
    assert not named


def test_the_field_and_canvas_sizes_are_written_in_one_place():
    # 28 and 280 as bare numbers anywhere else would be a second, silent definition.
    allowed = {ROOT / "digitdraw" / "serving" / "preprocess.py"}
    offenders = []
    for path in [*CORE, *UI, *PAGES]:
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value in (28, 280, 784):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders
