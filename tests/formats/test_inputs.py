"""Every input form of the contract, through the real entry point.

Expected probabilities come from ``conftest.reference_softmax`` (plain NumPy in
float64), never from ``softmax_cli.core``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import CLASSES, LOGITS, assert_one_error_line, reference_softmax
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from softmax_cli.errors import InputError
from softmax_cli.formats.jsonfmt import parse_json
from softmax_cli.formats.text import parse_delimited
from softmax_cli.inputs import parse_typed_numbers


def probs_json(completed) -> dict:
    """The JSON object a successful ``-f json`` run printed (CliRunner result or subprocess)."""
    assert completed.returncode == 0, (completed.returncode, completed.stderr)
    return json.loads(completed.stdout)


def npy_output(completed) -> np.ndarray:
    data = completed.stdout
    assert isinstance(data, bytes), "run with text=False"
    assert completed.returncode == 0, (completed.returncode, completed.stderr)
    return np.load(io.BytesIO(data), allow_pickle=False)


# ---------------------------------------------------------------- numbers typed as arguments

@pytest.mark.parametrize(
    ("args", "logits"),
    [
        (["3", "2", "1"], [3.0, 2.0, 1.0]),
        (["3,2,1"], [3.0, 2.0, 1.0]),
        (["3, 2, 1"], [3.0, 2.0, 1.0]),
        (["1 2 3; 4 5 6"], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        (["-1", "0", "2.5"], [-1.0, 0.0, 2.5]),
        (["1e3", "1", "-1e-3"], [1000.0, 1.0, -0.001]),
        (["1", "-inf", "2"], [1.0, -np.inf, 2.0]),
        (["-inf", "0"], [-np.inf, 0.0]),
    ],
)
def test_typed_numbers(cli, args, logits):
    out = probs_json(cli(["probs", *args, "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax(logits), rtol=1e-15, atol=0)
    assert np.shape(out["probs"]) == np.shape(logits)
    assert "classes" not in out


def test_typed_numbers_with_masked_logit_gives_exact_zero(softmax):
    out = probs_json(softmax("probs", "1", "-inf", "2", "-f", "json"))
    assert out["probs"][1] == 0.0
    np.testing.assert_allclose(out["probs"], reference_softmax([1.0, -np.inf, 2.0]), rtol=1e-15)


def test_typed_rows_of_unequal_length_are_an_error(cli):
    result = cli(["probs", "1 2 3; 4 5"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "row 1" in result.stderr


def test_numbers_and_sources_do_not_mix(cli, logits_files):
    result = cli(["probs", "1", str(logits_files["csv"])])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


# ---------------------------------------------------------------- files by extension

@pytest.mark.parametrize("fmt", ["npy", "npz", "csv", "tsv", "txt", "json", "jsonl"])
def test_every_file_format(cli, logits_files, fmt):
    out = probs_json(cli(["probs", logits_files[fmt], "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)
    if fmt in ("csv", "tsv"):
        assert out["classes"] == CLASSES
    else:
        assert "classes" not in out


def test_file_formats_through_the_installed_script(softmax, logits_files):
    for fmt in ("npy", "csv", "jsonl"):
        out = probs_json(softmax("probs", logits_files[fmt], "-f", "json"))
        np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)


def test_extension_is_case_insensitive(cli, tmp_path):
    path = tmp_path / "LOGITS.CSV"
    path.write_text("3,2,1\n")
    out = probs_json(cli(["probs", path, "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)


def test_npz_only_array_is_the_default(cli, logits_files):
    out = probs_json(cli(["probs", logits_files["npz_single"], "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)


def test_npz_prefers_logits_among_several(cli, logits_files):
    out = probs_json(cli(["probs", logits_files["npz"], "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)


def test_npz_key_chooses_the_member(cli, logits_files):
    out = probs_json(cli(["probs", logits_files["npz"], "--key", "labels", "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax([0.0, 2.0]), rtol=1e-15)


def test_npz_without_logits_lists_the_keys(cli, tmp_path):
    path = tmp_path / "many.npz"
    np.savez(path, alpha=LOGITS, beta=LOGITS)
    result = cli(["probs", path])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "alpha" in line and "beta" in line and "--key" in line
    assert "many.npz" in line


def test_npz_unknown_key_lists_the_keys(cli, logits_files):
    result = cli(["probs", logits_files["npz"], "--key", "nope"])
    assert result.exit_code == 2
    assert "nope" in result.stderr and "logits" in result.stderr and "labels" in result.stderr


def test_json_object_with_key(cli, tmp_path):
    path = tmp_path / "named.json"
    path.write_text(json.dumps({"a": [1.0, 2.0], "b": [5.0, 0.0, 1.0]}))
    out = probs_json(cli(["probs", path, "--key", "b", "-f", "json"]))
    np.testing.assert_allclose(out["probs"], reference_softmax([5.0, 0.0, 1.0]), rtol=1e-15)


def test_json_infinity_literal_is_a_masked_logit(cli, tmp_path):
    path = tmp_path / "masked.json"
    path.write_text("[[0, -Infinity, 1]]")
    out = probs_json(cli(["probs", path, "-f", "json"]))
    assert out["probs"][0][1] == 0.0
    np.testing.assert_allclose(out["probs"], reference_softmax([[0.0, -np.inf, 1.0]]), rtol=1e-15)


# ---------------------------------------------------------------- standard input, sniffed

def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


STDIN_FORMS = {
    "npy": _npy_bytes(LOGITS),
    "npz": _npz_bytes(logits=LOGITS),
    "json": json.dumps(LOGITS.tolist()).encode(),
    "jsonl": ("\n".join(json.dumps(row) for row in LOGITS.tolist()) + "\n").encode(),
    "csv": b"3,2,1\n1,-2,0.5\n",
    "csv-semicolon": b"3;2;1\n1;-2;0.5\n",
    "tsv": b"3\t2\t1\n1\t-2\t0.5\n",
    "text": b"# scores\n3 2 1\n\n1  -2   0.5\n",
    "csv-crlf-bom": b"\xef\xbb\xbf3,2,1\r\n1,-2,0.5\r\n",
}


@pytest.mark.parametrize("form", sorted(STDIN_FORMS))
@pytest.mark.parametrize("dash", [True, False], ids=["dash", "piped"])
def test_stdin_is_sniffed(softmax, cli, form, dash):
    # Piped input through the installed script; '-' through CliRunner (one subprocess below).
    runner = cli if dash else softmax
    args = ["probs", *(["-"] if dash else []), "-f", "json"]
    out = probs_json(runner(*args, input=STDIN_FORMS[form]))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)


@pytest.mark.parametrize("form", ["npy", "csv"])
def test_stdin_dash_through_the_installed_script(softmax, form):
    out = probs_json(softmax("probs", "-", "-f", "json", input=STDIN_FORMS[form]))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)


def test_stdin_header_gives_class_names(softmax):
    out = probs_json(softmax("probs", "-f", "json", input="cat,dog,bird\n3,2,1\n1,-2,0.5\n"))
    assert out["classes"] == CLASSES


def test_bad_stdin_errors_name_stdin(softmax):
    completed = softmax("probs", input="1,2,3\n4,5\n")
    assert_one_error_line(completed, "<stdin>", "line 2")


# ---------------------------------------------------------------- class names

def test_header_gives_class_names_in_json_and_csv(cli, logits_files):
    out = probs_json(cli(["probs", logits_files["csv"], "-f", "json"]))
    assert out["classes"] == CLASSES
    csv = cli(["probs", logits_files["csv"], "-f", "csv"])
    assert csv.exit_code == 0
    assert csv.stdout.splitlines()[0] == "cat,dog,bird"


def test_classes_option_comma_list(cli):
    out = probs_json(cli(["probs", "3", "2", "1", "--classes", "a,b,c", "-f", "json"]))
    assert out["classes"] == ["a", "b", "c"]
    np.testing.assert_allclose(out["probs"], reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)


def test_classes_option_file(cli, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("ant\nbee\n\nwasp\n")
    out = probs_json(cli(["probs", "3", "2", "1", "--classes", names, "-f", "json"]))
    assert out["classes"] == ["ant", "bee", "wasp"]


def test_classes_option_wins_over_header(cli, logits_files):
    out = probs_json(cli(["probs", logits_files["csv"], "--classes", "x,y,z", "-f", "json"]))
    assert out["classes"] == ["x", "y", "z"]


def test_classes_count_mismatch_is_an_error(cli):
    completed = cli("probs", "3", "2", "1", "--classes", "a,b")
    assert_one_error_line(completed, "--classes", "2", "3")


def test_header_with_wrong_count_is_an_error(cli, tmp_path):
    path = tmp_path / "short_header.csv"
    path.write_text("a,b\n1,2,3\n")
    result = cli(["probs", path])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "short_header.csv" in result.stderr


# ---------------------------------------------------------------- the class axis

@pytest.fixture
def cube(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(2, 3, 4)) * 3
    path = tmp_path / "cube.npy"
    np.save(path, array)
    return array, path


@pytest.mark.parametrize("axis", [-1, 0, 1, 2, -2])
def test_axis_on_3d_arrays(cli, cube, axis):
    array, path = cube
    out = npy_output(cli(["probs", path, "--axis", axis, "-f", "npy"], text=False))
    assert out.shape == array.shape
    np.testing.assert_allclose(out, reference_softmax(array, axis=axis), rtol=1e-14)
    np.testing.assert_allclose(out.sum(axis=axis), 1.0, rtol=1e-14)


def test_axis_default_is_last(cli, cube):
    array, path = cube
    out = npy_output(cli(["probs", path, "-f", "npy"], text=False))
    np.testing.assert_allclose(out, reference_softmax(array, axis=-1), rtol=1e-14)


def test_axis_out_of_range_is_an_error(cli, cube):
    _, path = cube
    assert_one_error_line(cli("probs", path, "--axis", "3"), "--axis", "3")


def test_3d_json_output_is_nested(cli, cube):
    array, path = cube
    out = probs_json(cli(["probs", path, "-f", "json"]))
    assert np.shape(out["probs"]) == array.shape


# ---------------------------------------------------------------- dtypes

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_dtypes_are_kept(cli, tmp_path, dtype):
    logits = LOGITS.astype(dtype)
    path = tmp_path / "typed.npy"
    np.save(path, logits)
    out = npy_output(cli(["probs", path, "-f", "npy"], text=False))
    assert out.dtype == np.dtype(dtype)
    expected = reference_softmax(logits.astype(np.float64))
    tolerance = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-15}[dtype]
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=tolerance)


def test_float16_is_computed_in_float32(cli, tmp_path):
    # Summing 1000 terms in float16 (11-bit significand) is off by many ulps; computed
    # in float32 and rounded once, the result matches the float64 reference rounded to
    # float16 except for rare double-rounding ties (at most one ulp).
    logits = np.random.default_rng(5).normal(size=(8, 1000)).astype(np.float16)
    path = tmp_path / "half.npy"
    np.save(path, logits)
    out = npy_output(cli(["probs", path, "-f", "npy"], text=False))
    assert out.dtype == np.float16
    expected = reference_softmax(logits.astype(np.float64)).astype(np.float16)
    ulps = np.abs(out.view(np.int16).astype(np.int32) - expected.view(np.int16).astype(np.int32))
    assert ulps.max() <= 1
    assert np.mean(ulps != 0) < 0.01


@pytest.mark.parametrize(
    "array",
    [np.array([[3, 2, 1], [1, 0, 5]], dtype=np.int32), np.array([3, 2, 1], dtype=np.uint8),
     np.array([True, False, True]), np.array([3, 2, 1], dtype=np.int64)],
    ids=["int32", "uint8", "bool", "int64"],
)
def test_integers_and_booleans_become_float64(cli, tmp_path, array):
    path = tmp_path / "ints.npy"
    np.save(path, array)
    out = npy_output(cli(["probs", path, "-f", "npy"], text=False))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, reference_softmax(array.astype(np.float64)), rtol=1e-15)


REFUSED = {
    "complex": np.array([1 + 2j, 3 + 0j]),
    "str": np.array(["1", "2"]),
    "bytes": np.array([b"1", b"2"]),
    "structured": np.array([(1.0, 2)], dtype=[("a", "f8"), ("b", "i4")]),
    "datetime": np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]"),
    "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unsupported_dtypes_are_refused(cli, tmp_path, name):
    path = tmp_path / f"{name}.npy"
    np.save(path, REFUSED[name])
    completed = cli("probs", path)
    assert_one_error_line(completed, f"{name}.npy")


@pytest.mark.parametrize("name", ["complex", "datetime"])
def test_unsupported_dtypes_in_npz_are_refused(cli, tmp_path, name):
    path = tmp_path / f"{name}.npz"
    np.savez(path, logits=REFUSED[name])
    result = cli(["probs", path])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_pickled_object_npy_is_refused(softmax, tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1.0, "two", None], dtype=object), allow_pickle=True)
    completed = softmax("probs", path)
    assert_one_error_line(completed, "objects.npy")


def test_pickled_object_npz_is_refused(cli, tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, logits=np.array([1.0, None], dtype=object))
    completed = cli("probs", path)
    assert_one_error_line(completed, "objects.npz")


def test_pickled_object_npy_on_stdin_is_refused(softmax):
    buffer = io.BytesIO()
    np.save(buffer, np.array([1.0, None], dtype=object), allow_pickle=True)
    completed = softmax("probs", input=buffer.getvalue())
    assert_one_error_line(completed, "<stdin>")


# ---------------------------------------------------------------- delimited text details

def test_comments_and_blank_lines_are_skipped(cli, tmp_path):
    path = tmp_path / "commented.csv"
    path.write_text("# produced by a model\n\ncat,dog,bird  # header\n3,2,1 # first\n\n   \n# between\n1,-2,0.5\n")
    out = probs_json(cli(["probs", path, "-f", "json"]))
    assert out["classes"] == CLASSES
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-15)


def test_ragged_rows_name_the_line(softmax, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("# comment\n3,2,1\n\n1,2\n")
    completed = softmax("probs", path)
    assert_one_error_line(completed, "ragged.csv", "line 4")


def test_non_numeric_field_names_line_and_column(softmax, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n3,2,1\n1,oops,2\n")
    completed = softmax("probs", path)
    assert_one_error_line(completed, "bad.csv", "line 3", "column 2", "oops")


def test_empty_field_names_line_and_column(cli, tmp_path):
    path = tmp_path / "hole.csv"
    path.write_text("3,2,1\n1,,2\n")
    result = cli(["probs", path])
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "column 2" in result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".json", ".jsonl"])
def test_empty_file_is_an_error(cli, tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_text("")
    assert_one_error_line(cli("probs", path), f"empty{suffix}")


def test_header_only_is_an_error(cli, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,c\n")
    assert_one_error_line(cli("probs", path), "header.csv")


def test_json_ragged_lists_are_an_error(cli, tmp_path):
    path = tmp_path / "ragged.json"
    path.write_text("[[1, 2, 3], [4, 5]]")
    assert_one_error_line(cli("probs", path), "ragged.json")


def test_json_null_is_an_error_naming_the_element(cli, tmp_path):
    path = tmp_path / "nulls.json"
    path.write_text("[[1, 2, 3], [4, null, 6]]")
    assert_one_error_line(cli("probs", path), "nulls.json", "[1][1]")


def test_jsonl_mismatched_lines_name_the_line(cli, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("[1, 2, 3]\n[4, 5, 6]\n[7, 8]\n")
    assert_one_error_line(cli("probs", path), "rows.jsonl", "line 3")


def test_invalid_json_names_line_and_column(cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[1, 2,\n oops]")
    assert_one_error_line(cli("probs", path), "broken.json", "line")


def test_empty_json_list_is_an_input_error(softmax):
    # An empty array has no classes; the contract asks for an error line, not a traceback.
    assert_one_error_line(softmax("probs", "-f", "json", input="[]"))


def test_deeply_nested_json_is_an_input_error(softmax, tmp_path):
    # json.loads raises RecursionError on very deep nesting: it must still be one error line.
    path = tmp_path / "deep.json"
    path.write_text("[" * 5_000)
    assert_one_error_line(softmax("probs", path), "deep.json")


def test_binary_garbage_on_stdin_is_an_error(cli):
    assert_one_error_line(cli("probs", input=b"\xff\xfe\x00garbage"), "<stdin>")


# ---------------------------------------------------------------- parser properties

def _returns_array_or_input_error(function, *args):
    try:
        value = function(*args)
    except InputError:
        return None
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
@example("1,2,3\n4,5,6")
@example("a,b\n1,2\n")
@example('"1,2",3\n4,5\n')
@example("\x00")
@example("1e999 -1e999 nan")
@example("#\n#\n")
@example(";;;\n;;;\n")
def test_parse_delimited_parses_or_raises_input_error(text):
    table = _returns_array_or_input_error(parse_delimited, text)
    if table is not None:
        assert isinstance(table.array, np.ndarray)
        assert table.array.dtype == np.float64
        assert table.array.ndim in (1, 2)
        assert table.classes is None or all(isinstance(name, str) for name in table.classes)
        if table.rows is not None:  # row names name the first axis
            assert len(table.rows) == table.array.shape[0] and all(isinstance(name, str) for name in table.rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=12,
    ).map(json.dumps),
))
@example("[]")
@example("[[1, 2], [3]]")
@example('{"a": [1], "b": [2]}')
@example("[1]\n[1, 2]\n")
@example("[1e400]")
@example('[{"a": 1, "b": 2}, {"b": 3, "a": 4}]')
@example('[{"a": 1}, {"b": 3}]')
@example('{"columns": ["a"], "index": [0], "data": [[1, 2]]}')
@example('{"columns": ["a", "b"], "data": [1, 2]}')
@example('{"a": {"0": 1}}')
def test_parse_json_parses_or_raises_input_error(text):
    table = _returns_array_or_input_error(parse_json, text, None, "logits")
    if table is not None:
        assert isinstance(table.array, np.ndarray)
        assert table.classes is None or len(table.classes) == table.array.shape[-1]
        assert table.rows is None or len(table.rows) == table.array.shape[0]


def test_parse_json_deep_nesting_raises_input_error():
    # json.loads raises RecursionError, not JSONDecodeError, on deep nesting.
    with pytest.raises(InputError):
        parse_json("[" * 5_000, None, "logits")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=5))
@example(["1 2; 3"])
@example([";"])
@example(["-inf", "inf", "nan"])
@example(["1_000"])
def test_parse_typed_numbers_parses_rejects_or_raises_input_error(tokens):
    try:
        value = parse_typed_numbers(tokens)
    except InputError:
        return
    # None means "these are not numbers" (the tokens are then sources).
    assert value is None or (isinstance(value, np.ndarray) and value.dtype == np.float64)
