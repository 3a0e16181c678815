"""Issue 20: a Zarr array's declared size is checked before the run is planned, as an ``.npy`` header is.

Each array is written by zarr itself (v3 ``zarr.json`` and v2 ``.zarray``),
then its metadata is edited to declare another shape. Every refusal is one
``error:`` line naming the array, printed before any cluster starts (no
dashboard ``note:``), through the installed script.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, run

pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")


def _edited(tmp_path, shape, zarr_format=3):
    """A (4, 3) float32 array by zarr, whose metadata then declares ``shape``."""
    path = tmp_path / f"v{zarr_format}.zarr"
    array = zarr.create_array(str(path), shape=(4, 3), chunks=(2, 3), dtype="f4", zarr_format=zarr_format)
    array[:] = np.arange(12, dtype=np.float32).reshape(4, 3)
    meta_path = path / ("zarr.json" if zarr_format == 3 else ".zarray")
    meta = json.loads(meta_path.read_text())
    meta["shape"] = shape
    meta_path.write_text(json.dumps(meta))
    return path


def _refused(path, *fragments, command=("loss", "--labels", "0,1,2,0", "-f", "json")):
    completed = run(command[0], path, *command[1:], "--scheduler", "local:1", timeout=120)
    line = assert_one_error_line(completed)
    assert "dashboard" not in completed.stderr  # refused before the cluster started
    assert str(path) in line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("shape", [[4, 2**63 - 1], [2**63 - 1, 2**63 - 1], [2**40, 2**40]])
def test_a_shape_past_what_any_array_holds_is_one_line(tmp_path, shape, zarr_format):
    _refused(_edited(tmp_path, shape, zarr_format), "declares shape", "more than any array can hold")


def test_billions_of_rows_in_a_small_folder_are_refused_before_planning(tmp_path):
    # 2**45 rows of 3 float32: 384 TiB declared, tens of millions of units to plan.
    line = _refused(_edited(tmp_path, [2**45, 3]), "planning 35,184,372,088,832 rows")
    assert "of memory" in line


def test_one_row_wider_than_memory_is_refused(tmp_path):
    _refused(_edited(tmp_path, [4, 3 * 10**12]), "one row of 3,000,000,000,000 classes")


def test_compare_checks_both_sides_before_the_cluster_starts(tmp_path):
    sound = tmp_path / "sound.npy"
    np.save(sound, np.zeros((4, 3), dtype=np.float32))
    huge = _edited(tmp_path, [4, 2**63 - 1])
    completed = run("compare", sound, huge, "-f", "json", "--scheduler", "local:1", timeout=120)
    line = assert_one_error_line(completed)
    assert "dashboard" not in completed.stderr and str(huge) in line and "declares shape" in line


def test_the_npy_header_check_is_the_same_one(tmp_path):
    """A header of zero-size elements: the message the in-process path gives, through the shared check."""
    path = tmp_path / "void.npy"
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "|V0", "fortran_order": False, "shape": (4, 3)})
    in_process = assert_one_error_line(run("probs", path, "-f", "json"))
    cluster = assert_one_error_line(run("loss", path, "--labels", "0,1,2,0", "--scheduler", "local:1"))
    assert "whose elements have no size" in in_process and "whose elements have no size" in cluster


def test_a_fill_value_past_the_dtype_prints_no_warning(tmp_path):
    """zarr casts 1e300 to a float32 inf with NumPy's overflow warning, on the client and on every worker."""
    path = _edited(tmp_path, [4, 3])
    meta = json.loads((path / "zarr.json").read_text())
    meta["fill_value"] = 1e300
    (path / "zarr.json").write_text(json.dumps(meta))
    completed = run("probs", path, "-o", tmp_path / "p.npy", "--scheduler", "local:1", timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == [line for line in completed.stderr.splitlines()
                                             if line.startswith("note: the Dask dashboard is at http")]
    logits = np.arange(12.0).reshape(4, 3)
    expected = np.exp(logits - np.log(np.exp(logits).sum(1, keepdims=True)))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-6)
