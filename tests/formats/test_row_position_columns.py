"""A column of row positions left by pandas is not a class.

``df.reset_index()`` (which ``df.to_feather()`` asks for) keeps the row
positions 0..n-1 as a column named ``index`` (``level_0`` when ``index`` is
taken), and re-saving a CSV read back without ``index_col`` keeps them as
``Unnamed: 0``. Read as one more class, they gave a softmax over a class that
is not one, silently. They are refused, naming the column and what to do;
``--as-logits`` keeps them as a class, and a column of that name holding other
numbers is a class as before.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import reference_softmax, run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

LOGITS = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5], [0.0, 0.0, 4.0]])


def frame() -> "pd.DataFrame":
    return pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"])


def written(tmp_path, name: str) -> tuple[str, str]:
    """A file as pandas writes it, and the row-position column it holds."""
    if name == "reset.feather":
        frame().reset_index().to_feather(tmp_path / name)
        return name, "index"
    if name == "reset.parquet":
        frame().reset_index().to_parquet(tmp_path / name)
        return name, "index"
    if name == "reset_twice.csv":
        frame().reset_index().reset_index().drop(columns="index").to_csv(tmp_path / name, index=False)
        return name, "level_0"
    if name == "resaved.csv":
        pd.read_csv(io.StringIO(frame().to_csv())).to_csv(tmp_path / name, index=False)
        return name, "Unnamed: 0"
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["reset.feather", "reset.parquet", "reset_twice.csv", "resaved.csv"])
def test_a_column_of_row_positions_is_refused_naming_it(tmp_path, name):
    path, column = written(tmp_path, name)
    completed = run("probs", path, "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"column {column!r} holds the row positions 0..2" in lines[0]
    assert "--as-logits" in lines[0] and path in lines[0]


def test_as_logits_keeps_the_positions_as_a_class(tmp_path):
    frame().reset_index().to_parquet(tmp_path / "reset.parquet")
    completed = run("probs", "reset.parquet", "-f", "csv", "--as-logits", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    header, *rows = completed.stdout.splitlines()
    assert header == "index,cat,dog,bird"
    with_positions = np.column_stack([np.arange(3.0), LOGITS])
    np.testing.assert_allclose(np.array([[float(x) for x in row.split(",")] for row in rows]),
                               reference_softmax(with_positions), rtol=1e-15)


def test_a_column_named_index_holding_other_numbers_is_a_class(tmp_path):
    table = frame().assign(index=[5.0, -1.0, 2.0])
    table.to_parquet(tmp_path / "named.parquet")
    completed = run("probs", "named.parquet", "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    header, *rows = completed.stdout.splitlines()
    assert header == "cat,dog,bird,index"
    np.testing.assert_allclose(np.array([[float(x) for x in row.split(",")] for row in rows]),
                               reference_softmax(table.to_numpy()), rtol=1e-15)
