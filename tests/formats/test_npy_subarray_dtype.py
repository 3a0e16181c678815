"""An ``.npy`` header whose dtype is a subarray (``('<f8', (3,))``) holds rows of that many classes.

NumPy never writes one for a plain array, but a hand-written or foreign header
can: shape ``(2,)`` of ``('<f8', (3,))`` is a (2, 3) array. Every path (the
whole read, the streamed rows, standard input) reads it so, and the
reference is the softmax of the (2, 3) values in plain NumPy float64. A
subarray of subarrays is unpacked to the end, as ``np.load(mmap_mode="r")``
and ``np.zeros(4, dtype)`` do: unpacked one level, its rows were its second
axis and the loss was computed over the wrong classes.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import reference_log_softmax, reference_softmax

VALUES = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5]])


def subarray_npy(fortran: bool = False, descr=("<f8", (3,)), shape=(2,), values=VALUES) -> bytes:
    out = io.BytesIO()
    out.write(b"\x93NUMPY\x01\x00")
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    out.write(len(header).to_bytes(2, "little") + header)
    out.write(values.astype("<f8").tobytes())
    return out.getvalue()


NESTED = np.arange(40, dtype="<f8").reshape(4, 2, 5) / 7


def probs_through(softmax, path, through: str) -> np.ndarray:
    """``softmax probs`` of the .npy at ``path``, read from the file or from standard input."""
    completed = (softmax("probs", path, "-f", "npy", text=False) if through == "file"
                 else softmax("probs", "-", "-f", "npy", input=path.read_bytes(), text=False))
    assert completed.returncode == 0, completed.stderr
    return np.load(io.BytesIO(completed.stdout))


def nested_npy() -> bytes:
    """Shape (4,) of 2 subarrays of 5 float64 each: a (4, 2, 5) array, as NumPy makes of it."""
    return subarray_npy(descr=(("<f8", (5,)), (2,)), shape=(4,), values=NESTED)


@pytest.mark.parametrize("through", ["file", "stdin"])
def test_a_subarray_dtype_is_rows_of_its_classes(softmax, tmp_path, through):
    path = tmp_path / "sub.npy"
    path.write_bytes(subarray_npy())
    probs = probs_through(softmax, path, through)
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


def test_numpy_unpacks_a_subarray_of_subarrays_to_the_end(tmp_path):
    path = tmp_path / "nested.npy"
    path.write_bytes(nested_npy())
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), NESTED)


@pytest.mark.parametrize("through", ["file", "stdin"])
def test_a_subarray_of_subarrays_is_rows_of_its_innermost_classes(softmax, tmp_path, through):
    path = tmp_path / "nested.npy"
    path.write_bytes(nested_npy())
    np.testing.assert_allclose(probs_through(softmax, path, through), reference_softmax(NESTED), rtol=1e-12)


def test_the_loss_of_a_subarray_of_subarrays_is_over_its_innermost_classes(softmax, tmp_path):
    path = tmp_path / "nested.npy"
    path.write_bytes(nested_npy())
    labels = np.array([[0, 4], [1, 3], [2, 2], [3, 1]])
    np.save(tmp_path / "labels.npy", labels)
    completed = softmax("loss", path, "--labels", tmp_path / "labels.npy", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    picked = np.take_along_axis(reference_log_softmax(NESTED), labels[..., None], axis=-1)
    np.testing.assert_allclose(json.loads(completed.stdout)["loss"], -picked.mean(), rtol=1e-12)
