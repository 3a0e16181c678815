"""Parquet and Arrow tables at the edges of what their producers write.

A table with no columns (``pd.DataFrame(index=range(3)).to_parquet()``,
``pd.DataFrame().to_feather()``) ended in a traceback. A first column of text
that polars writes as ``string_view`` (Arrow IPC) or as a dictionary
(``pl.Categorical``, Parquet and Arrow alike) was refused as "not numbers"
where a ``string`` one is read as the row names.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_softmax, run

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

LOGITS = np.array([[3.0, 2.0], [1.0, -2.0], [0.0, 0.5]])
NAMES = ["u", "v", "w"]


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


@pytest.mark.parametrize("dtype", ["String", "Categorical"])
@pytest.mark.parametrize("name", ["named.parquet", "named.arrow"])
def test_a_first_column_of_text_from_polars_gives_the_row_names(tmp_path, dtype, name):
    frame = pl.DataFrame({"id": pl.Series(NAMES, dtype=getattr(pl, dtype)), "a": LOGITS[:, 0], "b": LOGITS[:, 1]})
    if name.endswith(".parquet"):
        frame.write_parquet(tmp_path / name)
    else:
        frame.write_ipc(tmp_path / name)
    completed = run("probs", name, "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    header, *rows = completed.stdout.splitlines()
    assert header.split(",")[1:] == ["a", "b"]
    assert [row.split(",")[0] for row in rows] == NAMES
    np.testing.assert_allclose(np.array([[float(x) for x in row.split(",")[1:]] for row in rows]),
                               reference_softmax(LOGITS), rtol=1e-15)
