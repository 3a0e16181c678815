"""A Parquet file whose metadata miscounts its rows is refused in one line, whatever the table's layout.

The footer's ``num_rows`` sized the array the row groups were copied into: one
row too many left a row of uninitialised memory in the result (exit 0), one too
few ended in a traceback. A row group's own ``num_rows`` below its column
chunks' value count made pyarrow drop the rows past it, silently. pandas writes
each file, and one byte of its footer (Thrift's zigzag varint) is then changed.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from conftest import assert_one_error_line, run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

LOGITS = np.random.default_rng(3).normal(size=(5, 3))
FRAMES = {
    "classes as columns": lambda: pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"]),
    "one list column": lambda: pd.DataFrame({"logits": list(LOGITS)}),
    "row names beside": lambda: pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"],
                                             index=pd.Index(list("abcde"), name="id")),
}


def with_counts(path, footer: int | None = None, row_group: int | None = None) -> None:
    """Rewrite the footer's rows (FileMetaData field 3) and the one row group's (RowGroup field 3), both 5."""
    raw = bytearray(path.read_bytes())
    start = len(raw) - 8 - struct.unpack("<I", raw[-8:-4])[0]
    # An i64 field one id after the one before it (0x16) holding 5 (zigzag 0x0a): the footer's first,
    # the row group's last.
    places = [start + match.start() + 1 for match in re.finditer(b"\x16\x0a", bytes(raw[start:-8]))]
    for place, count in ((places[0], footer), (places[-1], row_group)):
        if count is not None:
            raw[place] = 2 * count
    path.write_bytes(raw)


@pytest.mark.parametrize("layout", FRAMES)
@pytest.mark.parametrize("declared", [6, 4, 0])
def test_a_footer_that_miscounts_the_rows_is_refused(tmp_path, layout, declared):
    path = tmp_path / "logits.parquet"
    FRAMES[layout]().to_parquet(path)
    with_counts(path, footer=declared)
    line = assert_one_error_line(run("probs", path, "-f", "csv"), "logits.parquet", f"declares {declared} rows",
                                 "hold 5")
    assert "damaged" in line


def test_a_row_group_that_counts_fewer_rows_than_its_columns_hold_is_refused(tmp_path):
    path = tmp_path / "logits.parquet"
    FRAMES["classes as columns"]().to_parquet(path)
    with_counts(path, footer=4, row_group=4)
    assert_one_error_line(run("probs", path, "-f", "csv"), "logits.parquet", "4 rows", "5 values", "damaged")


def test_the_undamaged_file_reads_all_its_rows(tmp_path):
    path = tmp_path / "logits.parquet"
    FRAMES["classes as columns"]().to_parquet(path)
    with_counts(path)
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.splitlines()) == 1 + len(LOGITS)
