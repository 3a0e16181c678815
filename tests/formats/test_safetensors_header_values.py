"""``.safetensors`` headers that are valid JSON with values of the wrong kind: one ``error:`` line, never a traceback.

Each file is the library's layout (8-byte length, JSON header, data) with one
value of the header replaced; the safetensors package itself refuses every
one of them (checked when it is installed), and so must every command.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

TENSOR = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
DATA = np.arange(6, dtype="<f4").tobytes()


def write(path, header_text: str, data: bytes = DATA):
    text = header_text.encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def with_tensor(**changes) -> str:
    return json.dumps({"logits": TENSOR | changes})


BAD = {
    "a list as dtype": with_tensor(dtype=["F32"]),
    "an object as dtype": with_tensor(dtype={"F32": 1}),
    "a 5000-digit integer": with_tensor(shape=[2, 3]).replace("[2, 3]", "[2, " + "9" * 5000 + "]"),
    "a shape past 2**63": with_tensor(shape=[2**63, 3]),
    "a boolean in the shape": with_tensor(shape=[True, 3], data_offsets=[0, 12]),
    "a shape whose product wraps int64 to 0": with_tensor(shape=[2**32, 2**32, 4], data_offsets=[0, 0]),
    "offsets as text": with_tensor(data_offsets=["0", "24"]),
    "a tensor entry that is a list": json.dumps({"logits": [1, 2]}),
    "a deeply nested __metadata__": '{"__metadata__": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + ', "logits": '
                                    + json.dumps(TENSOR) + "}",
    # What the package's header check refuses beyond the kinds of values: metadata that is not text by name,
    # JSON's missing NaN, a name given twice, and byte ranges that do not tile the data exactly.
    "a list as __metadata__": json.dumps({"__metadata__": ["a"], "logits": TENSOR}),
    "a number as a __metadata__ value": json.dumps({"__metadata__": {"a": 1}, "logits": TENSOR}),
    "NaN in the header": '{"__metadata__": {"a": NaN}, "logits": ' + json.dumps(TENSOR) + "}",
    "a tensor named twice": '{"logits": ' + json.dumps(TENSOR) + ', "logits": '
                            + json.dumps(TENSOR | {"shape": [1, 3], "data_offsets": [0, 12]}) + "}",
    "two tensors over the same bytes": json.dumps({"logits": TENSOR, "bias": {"dtype": "F32", "shape": [3],
                                                                              "data_offsets": [12, 24]}}),
    "bytes before the first tensor": with_tensor(shape=[1, 3], data_offsets=[12, 24]),
    "bytes after the last tensor": with_tensor(shape=[1, 3], data_offsets=[0, 12]),
}


@pytest.mark.parametrize("command", [["probs"], ["topk", "-k", "2"], ["temperature-sweep", "--labels", "0,1"],
                                     ["compare", "{path}"]], ids=lambda c: c[0])
@pytest.mark.parametrize("case", list(BAD))
def test_a_header_value_of_the_wrong_kind_is_one_line(tmp_path, case, command):
    path = write(tmp_path / "bad.safetensors", BAD[case])
    args = [str(path) if arg == "{path}" else arg for arg in command]
    assert_one_error_line(run(args[0], path, *args[1:], "-f", "json"), str(path))


@pytest.mark.parametrize("case", list(BAD))
def test_the_safetensors_package_refuses_them_too(tmp_path, case):
    numpy_api = pytest.importorskip("safetensors.numpy")
    path = write(tmp_path / "bad.safetensors", BAD[case])
    with pytest.raises(Exception):  # noqa: B017 -- the package raises its own SafetensorError
        numpy_api.load_file(str(path))


def test_class_names_metadata_that_is_not_ours_is_ignored(tmp_path):
    # Another producer's "classes" entry: not a JSON list of names (here nested past Python's parser).
    header = {"__metadata__": {"classes": "[" * 5000 + "]" * 5000}, "logits": TENSOR}
    path = write(tmp_path / "other.safetensors", json.dumps(header))
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = reference_softmax(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], expected, rtol=1e-6)


def test_class_names_of_another_count_than_the_one_tensors_classes_are_refused(tmp_path):
    numpy_api = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "named.safetensors"
    numpy_api.save_file({"logits": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(path),
                        metadata={"classes": json.dumps(["cat", "dog"])})
    assert_one_error_line(run("probs", path, "-f", "json"), "2 classes", "3 on its last axis", str(path))


def test_class_names_of_another_tensors_last_axis_are_left_to_it(tmp_path):
    numpy_api = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "named.safetensors"
    numpy_api.save_file({"logits": np.arange(6, dtype=np.float32).reshape(2, 3), "labels": np.array([0, 2])},
                        str(path), metadata={"classes": json.dumps(["cat", "dog", "fish"])})
    completed = run("loss", path, "--labels", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    logits = np.arange(6, dtype=np.float64).reshape(2, 3)
    expected = -np.log(reference_softmax(logits)[[0, 1], [0, 2]]).mean()
    assert json.loads(completed.stdout)["classes"] == ["cat", "dog", "fish"]
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-6)


def test_a_class_name_given_twice_in_the_metadata_names_the_file_and_its_entry(tmp_path):
    numpy_api = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "model.safetensors"
    numpy_api.save_file({"logits": np.ones((3, 4), np.float32)}, str(path),
                        metadata={"classes": json.dumps(["a", "b", "a", "d"])})
    assert_one_error_line(run("probs", path), "'a' is given twice", "model.safetensors", "__metadata__ 'classes'")


@pytest.mark.parametrize("dtype, code", [("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")])
def test_float8_tensors_are_refused_saying_which_dtypes_are_read(tmp_path, dtype, code):
    torch = pytest.importorskip("torch")
    torch_api = pytest.importorskip("safetensors.torch")
    path = tmp_path / "model.safetensors"
    torch_api.save_file({"logits": torch.ones(3, 4).to(getattr(torch, dtype))}, str(path))
    line = assert_one_error_line(run("probs", path), code, "float8", "F32", "BF16", ".float()", "model.safetensors")
    assert "expected real numbers" not in line
