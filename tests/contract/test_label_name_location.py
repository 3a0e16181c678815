"""A class-name label that is not a class names its file once.

The labels file was packed into the position ("y.csv, row 2") and named again
as the holder on the way out: "(y.csv, y.csv, row 2)" from loss, grad, topk
and temperature-sweep.
"""

from __future__ import annotations

import pytest
from conftest import run

pd = pytest.importorskip("pandas")


@pytest.mark.parametrize("command", ["loss", "grad", "topk", "temperature-sweep", "compare"])
def test_an_unknown_class_name_is_located_by_its_file_once(tmp_path, command):
    pd.DataFrame([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5], [0.0, 0.0, 4.0]],
                 columns=["cat", "dog", "bird"]).to_csv(tmp_path / "logits.csv", index=False)
    (tmp_path / "y.txt").write_text("cat\ndog\nfish\n")
    inputs = ["logits.csv", "logits.csv"] if command == "compare" else ["logits.csv"]
    completed = run(command, *inputs, "--labels", "y.txt", "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.splitlines()[-1] == (
        "error: label 'fish' is not one of the logits' classes (cat, dog, bird) (y.txt, row 2)")
