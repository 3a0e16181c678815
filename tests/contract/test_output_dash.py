"""``-o -`` is not standard output, and says so rather than writing a file named ``-``.

Inputs read ``-`` as standard input, so a Unix user types ``-o -`` for standard
output. It was refused as "cannot tell the output format from '-'; pass -f",
and with the ``-f`` that advice asks for it wrote a file named ``-`` in the
working folder. It is refused naming what to type instead, with or without
``-f``, and nothing is written.
"""

from __future__ import annotations

import pytest
from conftest import run


@pytest.mark.parametrize("extra", [[], ["-f", "csv"], ["-f", "npy"]])
def test_dash_as_the_output_is_refused_and_writes_nothing(tmp_path, extra):
    completed = run("probs", "3", "2", "1", "-o", "-", *extra, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [
        "error: -o - would write a file named '-'; leave out -o to write to standard output"]
    assert list(tmp_path.iterdir()) == []


def test_dash_as_a_batch_output_is_refused_too(tmp_path):
    (tmp_path / "a.csv").write_text("3,2,1\n")
    completed = run("topk", "a.csv", "-k", "1", "-o", "-", "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1].startswith("error: -o - would write a file named '-'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]
