"""Parquet and Arrow tables at the edges of what their producers write.

A table with no columns (``pd.DataFrame(index=range(3)).to_parquet()``,
``pd.DataFrame().to_feather()``) ended in a traceback.
"""

from __future__ import annotations

import pytest
from conftest import run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


@pytest.mark.parametrize("name", ["empty.parquet", "empty.feather"])
def test_a_table_without_columns_is_refused_in_one_line(tmp_path, name):
    if name.endswith(".parquet"):
        pd.DataFrame(index=range(3)).to_parquet(tmp_path / name)
    else:
        pd.DataFrame().to_feather(tmp_path / name)
    completed = run("probs", name, "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [f"error: the table has no columns ({name})"]
