"""``python -m digitdraw read``: the number per image, JSON with boxes and probabilities, and one line
and exit status 1 for a file that cannot be read."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from drawings import draw_digit
from PIL import Image

import digitdraw
from digitdraw.cli import main


@pytest.fixture
def number_png(tmp_path):
    """A wide drawing of 4, 0 and 7, black on white, as a PNG file."""
    canvas = np.concatenate([draw_digit(d) for d in (4, 0, 7)], axis=1)
    path = tmp_path / "number.png"
    Image.fromarray(255 - canvas[:, :, 3]).save(path)
    return path


def test_the_number_is_printed_per_image_for_one_model(number_png, tmp_path, capsys):
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (300, 200), (240, 240, 235)).save(blank)
    assert main(["read", str(number_png), str(blank), "--model", "4"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{number_png}: 407", f"{blank}: (no digits)"] and not err


def test_a_model_named_twice_answers_once(number_png, capsys):
    assert main(["read", str(number_png), "--model", "4", "4"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"{number_png}: 407"]


def test_every_model_answers_by_default(number_png, capsys):
    assert main(["read", str(number_png)]) == 0
    out, _ = capsys.readouterr()
    assert out.strip() == f"{number_png}: " + ", ".join(f"407 (model {m})" for m in digitdraw.MODEL_IDS)


def test_json_holds_boxes_and_every_models_probabilities(number_png, capsys):
    assert main(["read", str(number_png), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    reading = digitdraw.read_digits(number_png)
    assert result["image"] == str(number_png) and (result["width"], result["height"]) == (840, 280)
    assert result["numbers"] == {str(m): "407" for m in digitdraw.MODEL_IDS}
    assert [d["box"] for d in result["digits"]] == [list(box) for box in reading.boxes]
    for index, digit in enumerate(result["digits"]):
        for model_id in digitdraw.MODEL_IDS:
            assert np.allclose(
                digit["probabilities"][str(model_id)], reading.probabilities[model_id][index], atol=1e-6
            )


def test_a_bad_file_is_one_line_and_exit_status_1_and_the_others_are_still_read(number_png, tmp_path, capsys):
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(number_png.read_bytes()[:300])
    missing = tmp_path / "missing.png"
    assert main(["read", str(truncated), str(number_png), str(missing), "--model", "4"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{number_png}: 407"]
    assert err.splitlines() == [
        f"python -m digitdraw read: {truncated} is truncated or damaged (image file is truncated)",
        f"python -m digitdraw read: {missing} does not exist",
    ]


def test_an_unknown_model_is_a_usage_error(number_png, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["read", str(number_png), "--model", "nine"])
    assert exit_info.value.code == 2 and "model must be 'all' or one of" in capsys.readouterr().err


def test_a_number_not_read_surely_says_which_digit_to_check(number_png, capsys, monkeypatch):
    from digitdraw.reading import read

    monkeypatch.setattr(read, "SURE_NUMBER", 1.01)  # No number is that sure.
    assert main(["read", str(number_png), "--model", "4"]) == 0
    out, _ = capsys.readouterr()
    assert re.fullmatch(r".*number\.png: 407 \(not sure: check digit [123]\)", out.strip())


def test_json_says_whether_each_model_is_sure_of_the_number(number_png, capsys):
    assert main(["read", str(number_png), "--json", "--model", "4"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["sure"] == {"4": True} and 0.95 <= result["number_confidence"]["4"] <= 1
    # The second opinion read the digits too, but only the model asked for is reported.
    assert result["numbers"] == {"4": "407"}
    assert all(set(digit["probabilities"]) == {"4"} for digit in result["digits"])
    assert result["slant"] == 0.0  # A level line, not turned.
