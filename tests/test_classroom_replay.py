"""The classroom benchmark's replay: a browser's captured messages, sent again as another student who has
pressed Clear a different number of times, must be read by the page as that student's own."""

from __future__ import annotations

import json

from streamlit.proto.BackMsg_pb2 import BackMsg

from digitdraw.ui.app import clear_marker, clears_marked


def _request(clears: int) -> bytes:
    """A rerun request carrying a canvas report marked with ``clears`` Clears, and another widget."""
    message = BackMsg()
    canvas = message.rerun_script.widget_states.widgets.add()
    canvas.id = "canvas"
    stroke = {"type": "path", "left": 10, "top": 12, "path": [["M", 1, 2], ["L", 3, 4]]}
    canvas.json_value = json.dumps(
        {"drawing": {"raw": {"objects": [clear_marker(clears), stroke]}, "data": "x"}}
    )
    picker = message.rerun_script.widget_states.widgets.add()
    picker.id = "picker"
    picker.int_value = 4
    return message.SerializeToString()


def _read(payload: bytes) -> tuple[int | None, dict, int]:
    message = BackMsg()
    message.ParseFromString(payload)
    canvas, picker = message.rerun_script.widget_states.widgets
    objects = json.loads(canvas.json_value)["drawing"]["raw"]["objects"]
    return clears_marked(objects), objects[1], picker.int_value


def test_each_marker_moves_by_the_shift_and_nothing_else_changes():
    from benchmarks.classroom import marked

    # A Clear's click carries the drawing it clears (3 Clears), the emptied canvas's report the next count.
    click, emptied = marked([_request(3), _request(4)], shift=2)
    assert _read(click)[0] == 5 and _read(emptied)[0] == 6, "a stale report must stay one Clear behind"
    _, stroke, picked = _read(click)
    assert stroke["path"] == [["M", 1, 2], ["L", 3, 4]] and picked == 4
    (back,) = marked([_request(7)], shift=-7)
    assert _read(back)[0] == 0
