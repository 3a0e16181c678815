"""A ``--classes`` file saved with a byte-order mark (Notepad, Excel's "UTF-8 CSV") names its first class without it.

The mark kept the first name '\\ufeffcat', which looks like 'cat' in every message:
labels by name were refused as "label 'cat' is not one of the logits' classes (cat,
...)". The expected loss is plain NumPy in float64.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import reference_log_softmax, run

LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.5, 0.0]])
LABELS = ["cat", "bird", "dog"]


def test_a_classes_file_with_a_byte_order_mark_names_its_first_class_without_it(tmp_path):
    np.save(tmp_path / "logits.npy", LOGITS)
    (tmp_path / "classes.txt").write_bytes("\ufeffcat\r\ndog\r\nbird\r\n".encode())
    completed = run("loss", tmp_path / "logits.npy", "--classes", tmp_path / "classes.txt",
                    "--labels", ",".join(LABELS), "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = -np.mean(reference_log_softmax(LOGITS)[[0, 1, 2], [0, 2, 1]])
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)
