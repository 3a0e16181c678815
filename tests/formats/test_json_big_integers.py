"""JSON integers past int64 are numbers like any other.

Python's ``json`` refuses to convert an integer of more than 4300 digits (a
traceback), and NumPy keeps one past 64 bits as an object, which read as
"nested lists of unequal lengths". Such an integer is read as the float it
becomes anyway (logits are floats): past float64's range, +inf, which is
refused as +inf in a file is.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import reference_softmax, run

BIG = 2**70  # past int64 and uint64, well inside float64


@pytest.mark.parametrize("layout", ["json", "jsonl"])
def test_an_integer_past_64_bits_is_read_as_a_float(tmp_path, layout):
    rows = [[BIG, 0, 1], [3, 2, 1]]
    text = json.dumps(rows) if layout == "json" else "".join(json.dumps(row) + "\n" for row in rows)
    completed = run("probs", "-f", "csv", input=text)
    assert completed.returncode == 0, completed.stderr
    got = np.array([[float(x) for x in line.split(",")] for line in completed.stdout.splitlines()])
    np.testing.assert_allclose(got, reference_softmax(np.array(rows, dtype=np.float64)), rtol=1e-15)


@pytest.mark.parametrize("layout", ["json", "jsonl"])
def test_an_integer_of_5000_digits_is_refused_as_inf(tmp_path, layout):
    row = "[" + "9" * 5000 + ", 1]"
    text = f"[{row}]" if layout == "json" else f"{row}\n[1, 2]\n"
    completed = run("probs", "-f", "csv", input=text)
    assert completed.returncode == 2
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: +inf in logits"), completed.stderr
