"""End to end through the installed ``softmax`` script and Typer's CliRunner.

Expected values are NumPy float64 references from conftest, or exact constants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    assert_one_error_line,
    in_terminal,
    reference_log_softmax,
    reference_softmax,
    softmax_command,
)

import softmax_cli


def ok_json(completed) -> dict:
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    return json.loads(completed.stdout)


# ---------------------------------------------------------------- negative numbers next to options

@pytest.mark.parametrize(
    ("args", "logits"),
    [
        (["1", "-inf", "2", "-f", "json"], [1.0, -np.inf, 2.0]),
        (["-inf", "1", "-f", "json"], [-np.inf, 1.0]),
        (["-f", "json", "-1", "-2"], [-1.0, -2.0]),
        (["-1", "-f", "json", "-2"], [-1.0, -2.0]),
        (["-f", "json", "--", "-1", "-2"], [-1.0, -2.0]),
        (["-.5", "-1e3", "0", "--format", "json"], [-0.5, -1000.0, 0.0]),
        (["-1 -2; -3 -4", "-f", "json"], [[-1.0, -2.0], [-3.0, -4.0]]),
        (["-1,-2,-3", "--format=json"], [-1.0, -2.0, -3.0]),
    ],
)
def test_negative_numbers_are_data(softmax, args, logits):
    out = ok_json(softmax("probs", *args))
    np.testing.assert_allclose(out["probs"], reference_softmax(logits), rtol=1e-15)


def test_negative_numbers_to_csv(softmax):
    completed = softmax("probs", "-1", "-2", "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    values = [float(v) for v in completed.stdout.strip().split(",")]
    np.testing.assert_allclose(values, reference_softmax([-1.0, -2.0]), rtol=1e-15)


@pytest.mark.parametrize(
    "args",
    [
        ["3", "2", "1", "-t", "2", "-f", "json"],
        ["-t", "2", "3", "2", "1", "-f", "json"],
        ["3", "-t", "2", "2", "1", "-f", "json"],
        ["3", "2", "1", "--temperature", "2", "-f", "json"],
        ["3", "2", "1", "--temperature=2", "-f", "json"],
    ],
)
def test_temperature_option_anywhere(cli, args):
    out = ok_json(cli("probs", *args))
    np.testing.assert_allclose(out["probs"], reference_softmax([3.0, 2.0, 1.0], temperature=2.0), rtol=1e-15)


def test_negative_numbers_through_clirunner(cli):
    result = cli(["probs", "1", "-inf", "-2", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    np.testing.assert_allclose(out["probs"], reference_softmax([1.0, -np.inf, -2.0]), rtol=1e-15)


# ---------------------------------------------------------------- --log and --temperature

def test_log_is_exact_where_log_of_softmax_underflows(softmax):
    out = ok_json(softmax("probs", "1000", "1", "--log", "-f", "json"))
    assert out["log_probs"] == [0.0, -999.0]


def test_log_matches_reference(cli):
    result = cli(["probs", "1 2 3; 4 5 7", "--log", "-f", "json"])
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert list(out) == ["log_probs", "command", "version", "inputs"]
    np.testing.assert_allclose(out["log_probs"], reference_log_softmax([[1, 2, 3], [4, 5, 7]]), rtol=1e-14)


def test_saturation_is_exact(cli):
    out = ok_json(cli("probs", "1000", "0", "0", "-f", "json"))
    # exp(-1000) underflows to 0 in float64, so the exact answer is one-hot.
    assert out["probs"] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("temperature", [0.25, 0.5, 2.0, 10.0, 1e3])
def test_temperature_values(cli, temperature):
    logits = [[2.0, -1.0, 0.5, 3.0], [0.0, 0.0, 1.0, -2.0]]
    result = cli(["probs", "2 -1 0.5 3; 0 0 1 -2", "--temperature", temperature, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(json.loads(result.stdout)["probs"], reference_softmax(logits, temperature=temperature),
                               rtol=1e-14)


def test_temperature_with_log(cli):
    result = cli(["probs", "3", "2", "1", "-t", "0.5", "--log", "-f", "json"])
    np.testing.assert_allclose(json.loads(result.stdout)["log_probs"],
                               reference_log_softmax([3.0, 2.0, 1.0], temperature=0.5), rtol=1e-14)


def test_tiny_temperature_gives_one_hot_without_nan(cli):
    out = ok_json(cli("probs", "3", "2", "1", "-t", "1e-300", "-f", "json"))
    assert out["probs"] == [1.0, 0.0, 0.0]


def test_temperature_matches_scipy_when_available(cli):
    special = pytest.importorskip("scipy.special")
    logits = np.array([4.0, -3.0, 0.25])
    result = cli(["probs", "4", "-3", "0.25", "-t", "3", "-f", "json"])
    np.testing.assert_allclose(json.loads(result.stdout)["probs"], special.softmax(logits / 3), rtol=1e-14)


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "nan", "inf", "-inf"])
def test_bad_temperature_is_an_error(cli, value):
    completed = cli("probs", "3", "2", "1", "-t", value)
    assert_one_error_line(completed, "temperature")


def test_temperature_text_is_a_usage_error(softmax):
    completed = softmax("probs", "3", "2", "1", "-t", "hot")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "temperature" in completed.stderr.lower() and "hot" in completed.stderr
    assert completed.stdout == ""


# ---------------------------------------------------------------- masked rows, NaN and +inf

def test_masked_rows_error_is_the_default(softmax):
    line = assert_one_error_line(softmax("probs", "1 2; -inf -inf"), "row 1", "--masked-rows")
    assert "-inf" in line


def test_masked_rows_error_in_a_3d_array_names_the_row(cli, tmp_path):
    array = np.zeros((2, 3, 4))
    array[1, 2, :] = -np.inf
    path = tmp_path / "masked.npy"
    np.save(path, array)
    assert_one_error_line(cli("probs", path), "(1, 2)", "--masked-rows")


def test_masked_vector_is_an_error(cli):
    assert_one_error_line(cli("probs", "-inf", "-inf"), "--masked-rows")


def test_masked_rows_zero(cli):
    out = ok_json(cli("probs", "1 2; -inf -inf", "--masked-rows", "zero", "-f", "json"))
    assert out["probs"][1] == [0.0, 0.0]
    np.testing.assert_allclose(out["probs"][0], reference_softmax([1.0, 2.0]), rtol=1e-15)


def test_masked_rows_zero_with_log_is_minus_inf(cli):
    completed = cli("probs", "1 2; -inf -inf", "--masked-rows", "zero", "--log", "-f", "csv")
    assert completed.returncode == 0
    last = [float(v) for v in completed.stdout.splitlines()[1].split(",")]
    assert last == [-np.inf, -np.inf]


def test_masked_rows_nan(cli):
    completed = cli("probs", "1 2; -inf -inf", "--masked-rows", "nan", "-f", "csv")
    assert completed.returncode == 0
    rows = [[float(v) for v in line.split(",")] for line in completed.stdout.splitlines()]
    assert np.isnan(rows[1]).all()
    np.testing.assert_allclose(rows[0], reference_softmax([1.0, 2.0]), rtol=1e-15)


def test_masked_rows_bad_choice_exits_2(cli):
    completed = cli("probs", "1", "2", "--masked-rows", "maybe")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr and "maybe" in completed.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["1", "nan", "2"], ["NaN", "column 1"]),
        (["1", "2", "inf"], ["+inf", "column 2"]),
        (["1 2 3; 4 5 nan"], ["NaN", "row 1", "column 2"]),
        (["1 inf 3; 4 5 nan"], ["+inf", "row 0", "column 1"]),
    ],
)
def test_nan_and_plus_inf_name_the_first_position(cli, args, fragments):
    assert_one_error_line(cli("probs", *args), *fragments)


def test_nan_in_a_file_names_the_file_and_position(softmax, tmp_path):
    array = np.zeros((3, 4))
    array[2, 1] = np.nan
    array[2, 3] = np.inf
    path = tmp_path / "bad.npy"
    np.save(path, array)
    line = assert_one_error_line(softmax("probs", path), "NaN", "row 2", "column 1")
    assert "row 2, column 3" not in line


def test_nan_with_axis_names_the_class_index(cli, tmp_path):
    array = np.zeros((3, 4))
    array[2, 1] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, array)
    # With --axis 0 the classes run down the columns: row 1 of the transposed view, class 2.
    assert_one_error_line(cli("probs", path, "--axis", "0"), "NaN", "row 1", "column 2")


# ---------------------------------------------------------------- the error path

ERROR_CASES = {
    "nan": (["probs", "1", "nan"], "NaN"),
    "plus-inf": (["probs", "inf", "1"], "+inf"),
    "masked": (["probs", "-inf", "-inf"], "--masked-rows"),
    "temperature": (["probs", "1", "2", "-t", "0"], "temperature"),
    "unknown-extension": (["probs", "logits.parquet"], "logits.parquet"),
    "missing-file": (["probs", "missing.csv"], "missing.csv"),
    "mixed": (["probs", "1", "x.csv"], "x.csv"),
    "two-sources": (["probs", "a.csv", "b.csv"], "a.csv"),
    "ragged-typed": (["probs", "1 2; 3"], "row 1"),
    "axis": (["probs", "1", "2", "--axis", "1"], "--axis"),
    "classes": (["probs", "1", "2", "--classes", "a,b,c"], "--classes"),
    "precision": (["probs", "1", "2", "--precision", "-2"], "--precision"),
    "output-ext": (["probs", "1", "2", "-o", "out.xyz"], "out.xyz"),
    "empty-classes": (["probs", "1", "2", "--classes", "a,"], "--classes"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_every_error_is_one_line_without_traceback(cli, tmp_path, case):
    args, fragment = ERROR_CASES[case]
    completed = cli(*args, cwd=tmp_path)
    assert_one_error_line(completed, fragment)


@pytest.mark.parametrize("case", ["nan", "missing-file", "classes", "mixed"])
def test_errors_through_the_installed_script(softmax, tmp_path, case):
    args, fragment = ERROR_CASES[case]
    assert_one_error_line(softmax(*args, cwd=tmp_path), fragment)


@pytest.mark.parametrize(
    "args",
    [["probs", "1", "2", "--bogus"], ["probs", "1", "2", "-t", "hot"], ["probs", "1", "2", "--masked-rows", "maybe"],
     ["probs", "1", "2", "-f", "xml"], ["nosuchcommand"]],
    ids=["unknown-option", "temperature-text", "masked-rows-choice", "format-choice", "unknown-command"],
)
def test_usage_errors_are_one_error_line(softmax, args):
    # The contract: one line on standard error, "error: WHAT", exit 2. Click's own
    # parser errors print "Usage: ... / Try ... / Error: ..." unless the app reformats them.
    completed = softmax(*args)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr


def test_softmax_debug_shows_a_traceback(softmax):
    completed = softmax("probs", "1", "nan", env={"SOFTMAX_DEBUG": "1"})
    assert completed.returncode == 2
    assert "Traceback (most recent call last)" in completed.stderr
    assert completed.stderr.splitlines()[-1].startswith("error: ")


def test_no_traceback_without_softmax_debug(softmax):
    completed = softmax("probs", "1", "nan", env={"SOFTMAX_DEBUG": "0"})
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("stdin", [b"", b"   \n\n"], ids=["empty", "blank"])
def test_empty_stdin_is_a_usage_error_with_an_example(softmax, stdin):
    line = assert_one_error_line(softmax("probs", input=stdin))
    assert "softmax probs 3 2 1" in line


def test_empty_stdin_with_dash(cli):
    line = assert_one_error_line(cli("probs", "-", input=b""))
    assert "softmax probs" in line


def test_no_arguments_through_clirunner_reads_empty_stdin(cli):
    result = cli(["probs"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "softmax probs 3 2 1" in result.stderr


def test_no_arguments_on_a_terminal_is_a_usage_error_with_an_example(tmp_path):
    completed = in_terminal("probs")
    assert completed.returncode == 2
    text = completed.stdout.decode()
    assert "error: " in text and "softmax probs 3 2 1" in text


def test_unknown_file_extension(softmax, tmp_path):
    path = tmp_path / "logits.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    line = assert_one_error_line(softmax("probs", path), "logits.h5")
    assert ".npy" in line and ".csv" in line


def test_missing_file_names_it(softmax, tmp_path):
    assert_one_error_line(softmax("probs", tmp_path / "gone.npy"), "gone.npy", "no such file")


def test_directory_is_not_a_file(cli, tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert_one_error_line(cli("probs", folder), "folder.csv")


def test_unreadable_file_is_an_error(cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "secret.csv"
    path.write_text("1,2\n")
    path.chmod(0)
    assert_one_error_line(cli("probs", path), "secret.csv")


def test_corrupt_npy_is_an_error(cli, tmp_path):
    path = tmp_path / "corrupt.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert_one_error_line(cli("probs", path), "corrupt.npy")


def test_corrupt_npz_is_an_error(cli, tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04garbage")
    assert_one_error_line(cli("probs", path), "corrupt.npz")


def test_input_errors_never_exit_1(cli):
    # 1 is reserved for failed gates.
    assert cli("probs", "1", "nan").returncode == 2


# ---------------------------------------------------------------- broken pipe

@pytest.fixture(scope="module")
def big_npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.npy"
    np.save(path, np.random.default_rng(0).normal(size=(200_000, 8)))
    return path


def test_closed_pipe_ends_quietly(big_npy):
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    process = subprocess.Popen([*softmax_command(), "probs", str(big_npy), "-f", "csv"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               env=environment)
    first = process.stdout.read(4096)
    process.stdout.close()
    stderr = process.stderr.read()
    code = process.wait(timeout=60)
    assert first.count(b"\n") > 10
    assert stderr == b"", stderr.decode()
    assert code == 0


def test_closed_pipe_through_head(big_npy):
    command = " ".join([*softmax_command(), "probs", str(big_npy), "-f", "csv", "|", "head", "-n", "2"])
    completed = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, timeout=60,
                               env={k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"})
    assert completed.stderr == b""
    assert len(completed.stdout.splitlines()) == 2
    assert completed.returncode == 0


# ---------------------------------------------------------------- version and python -m

def test_version(softmax):
    completed = softmax("--version")
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"softmax {softmax_cli.__version__}"


def test_version_through_clirunner(cli):
    result = cli(["--version"])
    assert result.exit_code == 0 and softmax_cli.__version__ in result.stdout


def test_python_dash_m_does_the_same(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    completed = subprocess.run([sys.executable, "-m", "softmax_cli", "probs", "1", "-inf", "2", "-f", "json"],
                               capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL,
                               cwd=tmp_path, timeout=60)
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax([1.0, -np.inf, 2.0]),
                               rtol=1e-15)
    version = subprocess.run([sys.executable, "-m", "softmax_cli", "--version"], capture_output=True, text=True,
                             env=environment, cwd=tmp_path, timeout=60)
    assert version.stdout.strip() == f"softmax {softmax_cli.__version__}"
    error = subprocess.run([sys.executable, "-m", "softmax_cli", "probs", "nan"], capture_output=True, text=True,
                           env=environment, cwd=tmp_path, timeout=60)
    assert error.returncode == 2 and error.stderr.startswith("error: ")


def test_pipeline_of_two_commands(tmp_path):
    """softmax's JSON output is valid input for softmax (the object's primary array via --key)."""
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    script = " ".join(softmax_command())
    completed = subprocess.run(["bash", "-c", f"{script} probs 1000 1 --log -f json | {script} probs --key log_probs "
                                              "-f json"], capture_output=True, text=True, env=environment, timeout=60)
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax([0.0, -999.0]), rtol=1e-15)


def test_bare_softmax_prints_the_help_and_exits_0(softmax):
    completed = softmax()
    assert completed.returncode == 0
    assert "Commands:" in completed.stdout and completed.stderr == ""
    for name in ("probs", "loss", "grad", "jacobian", "temperature-sweep", "topk", "attention"):
        assert name in completed.stdout
