"""An ``.npy`` header whose dtype is a subarray (``('<f8', (3,))``) holds rows of that many classes.

NumPy never writes one for a plain array, but a hand-written or foreign header
can: shape ``(2,)`` of ``('<f8', (3,))`` is a (2, 3) array. Every path (the
whole read, the streamed rows, standard input) reads it so, and the
reference is the softmax of the (2, 3) values in plain NumPy float64.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import reference_softmax

VALUES = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5]])


def subarray_npy(fortran: bool = False) -> bytes:
    out = io.BytesIO()
    out.write(b"\x93NUMPY\x01\x00")
    header = repr({"descr": ("<f8", (3,)), "fortran_order": fortran, "shape": (2,)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    out.write(len(header).to_bytes(2, "little") + header)
    out.write(VALUES.astype("<f8").tobytes())
    return out.getvalue()


@pytest.mark.parametrize("through", ["file", "stdin"])
def test_a_subarray_dtype_is_rows_of_its_classes(softmax, tmp_path, through):
    path = tmp_path / "sub.npy"
    path.write_bytes(subarray_npy())
    completed = (softmax("probs", path, "-f", "npy", text=False) if through == "file"
                 else softmax("probs", "-", "-f", "npy", input=path.read_bytes(), text=False))
    assert completed.returncode == 0, completed.stderr
    probs = np.load(io.BytesIO(completed.stdout))
    np.testing.assert_allclose(probs, reference_softmax(VALUES), rtol=1e-12)


def test_a_subarray_dtype_streamed_to_a_file_gives_the_same_rows(softmax, tmp_path):
    path = tmp_path / "sub.npy"
    path.write_bytes(subarray_npy())
    out = tmp_path / "out.npy"
    completed = softmax("probs", path, "-o", out)
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(np.load(out), reference_softmax(VALUES), rtol=1e-12)


def test_a_subarray_dtype_in_fortran_order_is_refused(softmax, tmp_path):
    path = tmp_path / "sub.npy"
    path.write_bytes(subarray_npy(fortran=True))
    completed = softmax("probs", path, "-f", "csv")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and completed.stderr.startswith("error: ")
    assert "subarray" in completed.stderr and "sub.npy" in completed.stderr
