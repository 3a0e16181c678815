"""temperature-sweep --plot: what the picture must show, read back from the SVG's text and the PNG's size."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run

pytest.importorskip("matplotlib")
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_svg_labels_every_axis_counts_every_bin_and_marks_the_fit(tmp_path):
    picture = tmp_path / "calib.svg"
    done = run("temperature-sweep", SAMPLE / "digits_val.npz", "--labels", SAMPLE / "digits_val.npz", "--fit",
               "--plot", picture, "-f", "json", "-o", tmp_path / "sweep.json")
    assert done.returncode == 0, done.stderr
    text = picture.read_text()
    texts = set(re.findall(r">([^<>]+)</text>", text))
    # NLL and ECE on axes of their own, each named; the fitted temperature written where it is marked.
    assert {"mean NLL", "ECE", "temperature T", "rows", "accuracy in the bin"} <= texts
    assert any(t.startswith("fitted T = ") for t in texts)
    # Every filled bin's count is written over its bar.
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    before = sweep["bin_count"][sweep["temperatures"].index(1.0)]
    for count in (c for c in before if c):
        assert str(count) in texts
    assert "overconfident: gap up to mean confidence" in texts


def test_png_has_a_diagram_per_end_of_the_fit_and_the_curves(tmp_path):
    picture = tmp_path / "calib.png"
    done = run("temperature-sweep", SAMPLE / "digits_val.npz", "--labels", SAMPLE / "digits_val.npz", "--fit",
               "--plot", picture, "-f", "json")
    assert done.returncode == 0, done.stderr
    header = picture.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(header[16:20], "big")
    # Three columns of 5 inches at matplotlib's default 100 dpi: before, after, against temperature.
    assert width == 1500
