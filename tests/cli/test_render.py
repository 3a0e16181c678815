"""Every output format, the default format, -o/--force, atomic writes and the table's elision."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import numpy as np
import pytest
from conftest import (
    CLASSES,
    LOGITS,
    assert_one_error_line,
    in_terminal,
    read_csv_output,
    reference_log_softmax,
    reference_softmax,
)


def strict_json(text: str):
    """json.loads that refuses the non-standard NaN/Infinity tokens Python would accept."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token!r}")

    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------- each format to standard output

def test_csv(softmax):
    completed = softmax("probs", "1 2 3; 4 5 7", "-f", "csv")
    assert completed.returncode == 0 and completed.stderr == ""
    lines = completed.stdout.splitlines()
    assert len(lines) == 2
    values = np.array([[float(v) for v in line.split(",")] for line in lines])
    np.testing.assert_allclose(values, reference_softmax([[1, 2, 3], [4, 5, 7]]), rtol=1e-15)


def test_tsv(cli):
    completed = cli("probs", "1 2 3; 4 5 7", "-f", "tsv")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert all(line.count("\t") == 2 and "," not in line for line in lines)
    values = np.array([[float(v) for v in line.split("\t")] for line in lines])
    np.testing.assert_allclose(values, reference_softmax([[1, 2, 3], [4, 5, 7]]), rtol=1e-15)


def test_json(cli):
    completed = cli("probs", "1 2 3; 4 5 7", "-f", "json")
    assert completed.returncode == 0
    out = strict_json(completed.stdout)
    assert list(out) == ["probs", "command", "version", "inputs"]
    np.testing.assert_allclose(out["probs"], reference_softmax([[1, 2, 3], [4, 5, 7]]), rtol=1e-15)


def test_npy(softmax):
    completed = softmax("probs", "1 2 3; 4 5 7", "-f", "npy", text=False)
    assert completed.returncode == 0 and completed.stderr == b""
    array = np.load(io.BytesIO(completed.stdout), allow_pickle=False)
    assert array.dtype == np.float64 and array.shape == (2, 3)
    np.testing.assert_allclose(array, reference_softmax([[1, 2, 3], [4, 5, 7]]), rtol=1e-15)


@pytest.mark.parametrize(("flag", "name", "reference"), [([], "probs", reference_softmax),
                                                         (["--log"], "log_probs", reference_log_softmax)])
def test_npz_holds_every_named_array(cli, flag, name, reference):
    completed = cli("probs", "1 2 3; 4 5 7", *flag, "-f", "npz", text=False)
    assert completed.returncode == 0
    with np.load(io.BytesIO(completed.stdout), allow_pickle=False) as archive:
        assert archive.files == [name, "metadata"]
        np.testing.assert_allclose(archive[name], reference([[1, 2, 3], [4, 5, 7]]), rtol=1e-14)


def test_table_for_a_vector_shows_classes_values_and_bars(cli):
    completed = cli("probs", "3", "2", "1", "--classes", "cat,dog,bird", "-f", "table")
    assert completed.returncode == 0
    text = completed.stdout
    for name in CLASSES:
        assert name in text
    # One format for the column: four decimals, as the largest value's four significant digits need.
    assert "0.6652" in text and "0.2447" in text and "0.0900" in text
    assert "█" in text


def test_table_for_a_batch_shows_rows_and_class_headers(cli, logits_files):
    result = cli(["probs", logits_files["csv"], "-f", "table"])
    assert result.exit_code == 0
    header_line = next(line for line in result.stdout.splitlines() if "cat" in line)
    assert "dog" in header_line and "bird" in header_line
    expected = reference_softmax(LOGITS)
    assert f"{expected[0, 0]:.4f}" in result.stdout and f"{expected[1, 1]:.4f}" in result.stdout


def test_table_is_the_default_on_a_terminal():
    completed = in_terminal("probs", "3", "2", "1")
    assert completed.returncode == 0, completed.stdout
    text = completed.stdout.decode()
    assert "0.6652" in text and "█" in text
    assert "0.6652409557748218" not in text


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_binary_to_a_terminal_is_refused(fmt):
    completed = in_terminal("probs", "3", "2", "1", "-f", fmt)
    assert completed.returncode == 2
    text = completed.stdout.decode()  # script puts the pty's output (stdout and stderr) here
    assert "error: " in text and "terminal" in text
    assert "NUMPY" not in text and "PK" not in text


def test_binary_to_a_terminal_is_fine_with_output_file(tmp_path):
    target = tmp_path / "p.npy"
    completed = in_terminal("probs", "3", "2", "1", "-o", str(target))
    assert completed.returncode == 0
    np.testing.assert_allclose(np.load(target), reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)


def test_csv_is_the_default_on_a_pipe(softmax):
    completed = softmax("probs", "3", "2", "1")
    assert completed.returncode == 0
    header, values = read_csv_output(completed.stdout)
    assert header is None
    np.testing.assert_allclose(values[0], reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)
    assert "┃" not in completed.stdout


def test_csv_is_the_default_under_clirunner(cli):
    result = cli(["probs", "3", "2", "1"])
    assert result.exit_code == 0
    assert [float(v) for v in result.stdout.strip().split(",")] == pytest.approx(
        reference_softmax([3.0, 2.0, 1.0]).tolist(), rel=1e-15)


# ---------------------------------------------------------------- -o and the format from the extension

def _read_output(path, fmt):
    if fmt == "npy":
        return np.load(path, allow_pickle=False)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as archive:
            return archive["probs"]
    text = path.read_text()
    if fmt == "json":
        return np.array(strict_json(text)["probs"])
    delimiter = "," if fmt == "csv" else "\t"
    return np.array([[float(v) for v in line.split(delimiter)] for line in text.splitlines()])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "npy", "npz"])
def test_output_format_from_extension(cli, tmp_path, fmt):
    target = tmp_path / f"out.{fmt}"
    result = cli(["probs", "1 2 3; 4 5 7", "-o", target])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    np.testing.assert_allclose(_read_output(target, fmt), reference_softmax([[1, 2, 3], [4, 5, 7]]), rtol=1e-15)
    if fmt == "npy":
        assert target.read_bytes().startswith(b"\x93NUMPY")
    if fmt == "npz":
        assert zipfile.is_zipfile(target)


def test_output_extension_is_case_insensitive(cli, tmp_path):
    target = tmp_path / "OUT.JSON"
    result = cli(["probs", "3", "2", "1", "-o", target])
    assert result.exit_code == 0, result.stderr
    assert strict_json(target.read_text())["probs"] == pytest.approx(reference_softmax([3.0, 2.0, 1.0]).tolist())


def test_format_option_wins_over_extension(cli, tmp_path):
    target = tmp_path / "out.csv"
    result = cli(["probs", "3", "2", "1", "-o", target, "-f", "json"])
    assert result.exit_code == 0
    assert strict_json(target.read_text())["probs"] == pytest.approx(reference_softmax([3.0, 2.0, 1.0]).tolist())


def test_unknown_output_extension_without_format_is_an_error(cli, tmp_path):
    target = tmp_path / "out.dat"
    assert_one_error_line(cli("probs", "3", "2", "1", "-o", target), "out.dat")
    assert not target.exists()


def test_output_through_the_installed_script(softmax, tmp_path):
    target = tmp_path / "p.npy"
    completed = softmax("probs", "3", "2", "1", "-o", target)
    assert completed.returncode == 0 and completed.stdout == "" and completed.stderr == ""
    np.testing.assert_allclose(np.load(target), reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)


# ---------------------------------------------------------------- numbers as text

@pytest.fixture
def float32_logits(tmp_path):
    rng = np.random.default_rng(7)
    logits = (rng.normal(size=(16, 10)) * 4).astype(np.float32)
    path = tmp_path / "f32.npy"
    np.save(path, logits)
    return logits, path


def test_float32_csv_is_shortest_round_trip(cli, float32_logits):
    logits, path = float32_logits
    csv = cli("probs", path, "-f", "csv")
    binary = cli("probs", path, "-f", "npy", text=False)
    assert csv.returncode == 0 and binary.returncode == 0
    exact = np.load(io.BytesIO(binary.stdout))
    assert exact.dtype == np.float32
    fields = [line.split(",") for line in csv.stdout.splitlines()]
    for row, line in enumerate(fields):
        for column, text in enumerate(line):
            # NumPy's str of a float32 is its shortest round-trip form (dragon4).
            assert text == str(exact[row, column]), (text, exact[row, column])
            assert text == str(np.float32(text))
    read_back = np.array(fields, dtype=np.float32)
    assert read_back.tobytes() == exact.tobytes()  # bit-identical
    np.testing.assert_allclose(exact, reference_softmax(logits.astype(np.float64)), rtol=2e-6, atol=1e-12)


def test_float32_json_is_shortest_round_trip(cli, float32_logits):
    _, path = float32_logits
    out = strict_json(cli("probs", path, "-f", "json").stdout)
    exact = np.load(io.BytesIO(cli("probs", path, "-f", "npy", text=False).stdout))
    assert np.array(out["probs"], dtype=np.float32).tobytes() == exact.tobytes()
    text = cli("probs", path, "-f", "json").stdout
    assert str(exact[0, 0]) in text


def test_float64_csv_round_trips_exactly(cli):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 6)) * 10
    typed = "; ".join(" ".join(repr(float(v)) for v in row) for row in logits)
    csv = cli("probs", typed, "-f", "csv")
    binary = cli("probs", typed, "-f", "npy", text=False)
    exact = np.load(io.BytesIO(binary.stdout))
    read_back = np.array([[float(v) for v in line.split(",")] for line in csv.stdout.splitlines()])
    assert read_back.tobytes() == exact.tobytes()
    for text in csv.stdout.replace("\n", ",").strip(",").split(","):
        assert text == repr(float(text))  # Python's repr is the shortest float64 round trip


def test_float16_text_is_shortest_for_float16(cli, tmp_path):
    path = tmp_path / "half.npy"
    np.save(path, np.array([3.0, 2.0, 1.0], dtype=np.float16))
    fields = cli("probs", path, "-f", "csv").stdout.strip().split(",")
    exact = np.load(io.BytesIO(cli("probs", path, "-f", "npy", text=False).stdout))
    assert exact.dtype == np.float16
    assert fields == [str(value) for value in exact]  # e.g. "0.665", not 0.66552734375
    assert np.array(fields, dtype=np.float16).tobytes() == exact.tobytes()


def test_json_writes_null_for_minus_inf(cli):
    completed = cli("probs", "1", "-inf", "2", "--log", "-f", "json")
    assert completed.returncode == 0
    out = strict_json(completed.stdout)
    assert out["log_probs"][1] is None
    np.testing.assert_allclose([out["log_probs"][0], out["log_probs"][2]],
                               reference_log_softmax([1.0, 2.0]), rtol=1e-15)


def test_json_writes_null_for_nan(cli):
    completed = cli("probs", "1 2; -inf -inf", "--masked-rows", "nan", "-f", "json")
    assert completed.returncode == 0
    out = strict_json(completed.stdout)
    assert out["probs"][1] == [None, None]
    np.testing.assert_allclose(out["probs"][0], reference_softmax([1.0, 2.0]), rtol=1e-15)


def test_csv_writes_inf_and_nan_readably(cli):
    completed = cli("probs", "1 2; -inf -inf", "--masked-rows", "nan", "--log", "-f", "csv")
    assert completed.returncode == 0
    values = np.array([[float(v) for v in line.split(",")] for line in completed.stdout.splitlines()])
    assert np.isnan(values[1]).all()
    completed = cli("probs", "1", "-inf", "--log", "-f", "csv")
    values = [float(v) for v in completed.stdout.strip().split(",")]
    assert values[0] == 0.0 and values[1] == -np.inf


# ---------------------------------------------------------------- class names in outputs

def test_classes_in_json_and_csv_header_when_known(cli, logits_files):
    out = strict_json(cli(["probs", logits_files["csv"], "-f", "json"]).stdout)
    assert out["classes"] == CLASSES
    header, values = read_csv_output(cli(["probs", logits_files["csv"], "-f", "csv"]).stdout)
    assert header == CLASSES
    np.testing.assert_allclose(values, reference_softmax(LOGITS), rtol=1e-15)
    tsv = cli(["probs", logits_files["csv"], "-f", "tsv"]).stdout
    assert tsv.splitlines()[0] == "\t".join(CLASSES)


def test_no_classes_no_header_no_key(cli, logits_files):
    out = strict_json(cli(["probs", logits_files["npy"], "-f", "json"]).stdout)
    assert "classes" not in out
    header, values = read_csv_output(cli(["probs", logits_files["npy"], "-f", "csv"]).stdout)
    assert header is None
    assert values.shape == LOGITS.shape


def test_class_names_with_commas_are_quoted_in_csv(cli, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("cat, big\ndog\nbird\n")
    result = cli(["probs", "3", "2", "1", "--classes", names, "-f", "csv"])
    assert result.exit_code == 0
    import csv

    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["cat, big", "dog", "bird"]
    assert [float(v) for v in rows[1]] == pytest.approx(reference_softmax([3.0, 2.0, 1.0]).tolist(), rel=1e-15)


# ---------------------------------------------------------------- --precision

@pytest.mark.parametrize("digits", [0, 2, 5])
def test_precision_rounds_csv(cli, digits):
    completed = cli("probs", "1 2 3; 4 5 7", "-f", "csv", "--precision", digits)
    assert completed.returncode == 0
    values = np.array([[float(v) for v in line.split(",")] for line in completed.stdout.splitlines()])
    np.testing.assert_allclose(values, np.round(reference_softmax([[1, 2, 3], [4, 5, 7]]), digits), atol=1e-15)
    for text in completed.stdout.replace("\n", ",").strip(",").split(","):
        assert len(text.split(".")[-1]) <= max(digits, 1) or "e" in text


def test_precision_rounds_json_and_tsv(cli):
    expected = np.round(reference_softmax([3.0, 2.0, 1.0]), 3)
    out = strict_json(cli("probs", "3", "2", "1", "-f", "json", "--precision", "3").stdout)
    assert out["probs"] == pytest.approx(expected.tolist(), abs=1e-15)
    tsv = cli("probs", "3", "2", "1", "-f", "tsv", "--precision", "3").stdout
    assert tsv.strip().split("\t") == ["0.665", "0.245", "0.09"]


def test_precision_rounds_the_table(cli):
    text = cli("probs", "3", "2", "1", "-f", "table", "--precision", "2").stdout
    assert "0.67" in text and "0.6652" not in text


def test_negative_precision_is_an_error(cli):
    assert_one_error_line(cli("probs", "3", "2", "1", "--precision", "-1"), "--precision")


# ---------------------------------------------------------------- atomic writes, --force, inputs

def _leftovers(folder, keep=()):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_no_file_and_no_temporary_left_on_error(softmax, tmp_path):
    target = tmp_path / "out.csv"
    completed = softmax("probs", "1", "nan", "2", "-o", target)
    assert_one_error_line(completed, "NaN")
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_masked_row_error_leaves_no_file(cli, tmp_path):
    target = tmp_path / "out.npz"
    result = cli(["probs", "1 2; -inf -inf", "-o", target])
    assert result.exit_code == 2
    assert _leftovers(tmp_path) == []


def test_failed_run_keeps_the_existing_output_even_with_force(cli, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("precious\n")
    completed = cli("probs", "1", "inf", "-o", target, "--force")
    assert completed.returncode == 2
    assert target.read_text() == "precious\n"
    assert _leftovers(tmp_path, keep={"out.csv"}) == []


def test_existing_output_needs_force(softmax, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("precious\n")
    completed = softmax("probs", "3", "2", "1", "-o", target)
    assert_one_error_line(completed, "out.csv", "--force")
    assert target.read_text() == "precious\n"
    assert _leftovers(tmp_path, keep={"out.csv"}) == []


def test_force_replaces_the_existing_output(cli, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("precious\n")
    completed = cli("probs", "3", "2", "1", "-o", target, "--force")
    assert completed.returncode == 0, completed.stderr
    values = [float(v) for v in target.read_text().strip().split(",")]
    np.testing.assert_allclose(values, reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)
    assert _leftovers(tmp_path, keep={"out.csv"}) == []


@pytest.mark.parametrize("force", [False, True])
def test_input_is_never_overwritten(softmax, logits_files, force):
    source = logits_files["csv"]
    before = source.read_bytes()
    completed = softmax("probs", source, "-o", source, *(["--force"] if force else []))
    assert_one_error_line(completed, "input")
    assert source.read_bytes() == before


def test_input_is_never_overwritten_through_another_spelling(softmax, logits_files):
    source = logits_files["npy"]
    before = source.read_bytes()
    other = source.parent / "." / ".." / source.parent.name / source.name
    completed = softmax("probs", source, "-o", other, "--force", cwd=source.parent)
    assert completed.returncode == 2
    assert source.read_bytes() == before
    link = source.parent / "link.npy"
    link.symlink_to(source)
    completed = softmax("probs", source, "-o", link, "--force")
    assert completed.returncode == 2
    assert source.read_bytes() == before


def test_output_into_a_missing_folder_is_an_error(cli, tmp_path):
    assert_one_error_line(cli("probs", "3", "2", "1", "-o", tmp_path / "nope" / "out.csv"), "nope")


def test_output_file_permissions_follow_umask(cli, tmp_path):
    target = tmp_path / "out.csv"
    assert cli("probs", "3", "2", "1", "-o", target).returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


# ---------------------------------------------------------------- large arrays in the table

def _table_cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]]


def test_large_batch_table_is_elided_with_notes(cli, tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "big.npy"
    np.save(path, rng.normal(size=(50, 40)))
    completed = cli("probs", path, "-f", "table")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    # Rows: a note below the table, and it adds up with the rows shown.
    note = next(line for line in lines if "more rows" in line)
    hidden_rows = int(re.search(r"… (\d+) more rows", note).group(1))
    shown_rows = sum(1 for line in lines if line.startswith("│"))
    assert hidden_rows + shown_rows == 50
    # Classes: each row's most probable ones (#1, #2, ...), then a "… N more classes" header (it may wrap,
    # at spaces, over several header lines).
    header = [line for line in lines[: next(i for i, line in enumerate(lines) if line.startswith("┡"))]
              if line.startswith("┃")]
    header_text = " ".join(" ".join(_table_cells(line)) for line in header)
    assert "more" in header_text and "classes" in header_text
    hidden_columns = int(re.search(r"… (\d+)", header_text).group(1))
    shown_columns = sum(1 for cell in _table_cells(header[-1]) if re.fullmatch(r"#\d+", cell))
    assert shown_columns > 0 and hidden_columns + shown_columns == 40


def test_table_cells_are_whole_numbers_not_cut(cli, tmp_path):
    # Eliding whole columns is fine; cutting the digits of a shown value ("0.0044…") is not.
    rng = np.random.default_rng(1)
    path = tmp_path / "big.npy"
    np.save(path, rng.normal(size=(50, 40)))
    lines = cli("probs", path, "-f", "table").stdout.splitlines()
    for line in lines:
        if line.startswith("│"):
            cells = [cell for cell in _table_cells(line) if cell != "…"]
            for cell in cells:
                float(cell)  # raises on a value cut short with "…"


def test_long_vector_table_is_elided_with_a_note(cli):
    numbers = [str(i % 7) for i in range(60)]
    text = cli("probs", *numbers, "-f", "table").stdout
    assert "more rows" in text
    assert "40 more rows" in text


def test_machine_formats_are_never_elided(cli, tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((50, 40)))
    completed = cli("probs", path, "-f", "csv")
    lines = completed.stdout.splitlines()
    assert len(lines) == 50 and all(len(line.split(",")) == 40 for line in lines)
    assert float(lines[-1].split(",")[-1]) == 1 / 40
