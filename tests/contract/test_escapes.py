"""Issue 10, "nothing escapes": one test per defect, black-box through the ``softmax`` command.

Each test builds its damaged input with the real producer (np.save, np.savez,
zipfile) and damages it deterministically, or provokes the fault (a full or
read-only file system, a closed stream, a signal), then asserts the contract:
exit 0, 1 (a failed gate) or 2 with at most one ``error:`` line, never a
traceback, a raw NumPy warning, a death by signal or a leftover temporary file;
nothing on stdout on error; valid JSON where JSON is asked for.

Tests that need root (mounting a small tmpfs, making a device node) skip
cleanly where they cannot. The one heavy test (peak memory on a 1 GiB input)
runs only with ``SOFTMAX_SLOW=1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run, softmax_command
from escape_helpers import (
    COMMANDS,
    assert_contract,
    assert_refused,
    clean_env,
    damage_deflate_stream,
    leftovers,
    limit_memory,
    npy_bytes,
    npz_bytes,
    rewrite_npz,
    run_bytes,
    set_encrypted_flag,
    text_of,
    with_npy_header,
    zip_member_of_zeros,
)

from softmax_cli.errors import QUIET_SIGNALS

slow = pytest.mark.skipif(os.environ.get("SOFTMAX_SLOW") != "1", reason="heavy: set SOFTMAX_SLOW=1 to run")
LOGITS = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5]])


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted on ``folder`` for the block (skips the test where mounting is not allowed)."""
    folder.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def no_thread_can_start() -> None:
    """A ``preexec_fn``: each thread's stack (RLIMIT_STACK, 3 GiB) no longer fits the address space (2.5 GiB), as a
    thread stops fitting under ``ulimit -v`` beside a large input; the main thread's stack grows on demand."""
    import resource

    resource.setrlimit(resource.RLIMIT_STACK, (3 << 30, 3 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (2560 << 20, 2560 << 20))


@pytest.mark.parametrize("args", [["probs", "-o", "{out}"], ["probs", "-f", "csv"], ["loss", "--labels", "{labels}"],
                                  ["attention", "{q}", "{q}"]], ids=["streamed-npy", "csv", "loss", "attention"])
def test_a_thread_that_cannot_start_is_out_of_memory_not_a_traceback(tmp_path, args):
    """ulimit -v on a large input: 'RuntimeError: can't start new thread' from the thread pool, the read-ahead or
    the write-behind thread was a traceback with exit 1."""
    x = np.random.default_rng(1).normal(size=(20000, 100)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "labels.npy", np.zeros(20000, dtype=np.int64))
    np.save(tmp_path / "q.npy", x[:2000, :64])  # attention over 2000 x 2000 scores: large enough for threads
    names = {"{out}": tmp_path / "out.npy", "{labels}": tmp_path / "labels.npy", "{q}": tmp_path / "q.npy"}
    first = tmp_path / ("q.npy" if args[0] == "attention" else "x.npy")
    completed = run_bytes(args[0], first, *[names.get(arg, arg) for arg in args[1:]],
                          preexec_fn=no_thread_can_start, timeout=60)
    message = assert_refused(completed)
    assert "out of memory: no memory left to start a thread" in message
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "out.npy").exists()


# ---------------------------------------------------------------------------
# Crashes and wrong output
# ---------------------------------------------------------------------------

DAMAGED_HEADERS = {
    "void-dtype-negative-shape": "{'descr': '|V0', 'fortran_order': False, 'shape': (-1,), }",
    "zero-itemsize-string-negative-shape": "{'descr': 'S0', 'fortran_order': False, 'shape': (-1,), }",
    "negative-shape": "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
    "void-dtype": "{'descr': '|V0', 'fortran_order': False, 'shape': (6,), }",
    "shape-overflows-int64": "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
    "shape-beyond-int64": "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000000000000000,), }",
    "header-does-not-parse": "{'descr': '<f8', 'fortran_order': False, 'shape': (6, }",
    # The long fuzz: an unclosed brace stops NumPy's tokenizer ("EOF in multi-line statement").
    "header-does-not-tokenize": "{'descr': '<f8', 'fortran_order': False{, 'shape': (6,), }",
    "claims-more-than-data": "{'descr': '<f8', 'fortran_order': False, 'shape': (600,), }",
    # adv9: NumPy's reader raised TypeError ("an integer is required") through a traceback, and exit 1.
    "boolean-in-shape": "{'descr': '<f8', 'fortran_order': False, 'shape': (True, 6), }",
}


@pytest.mark.parametrize("where", ["file", "stdin", "labels"])
@pytest.mark.parametrize("damage", sorted(DAMAGED_HEADERS))
def test_damaged_npy_header_is_refused_in_one_line(tmp_path, damage, where):
    """Issue 10: '|V0' with shape (-1,) dies by SIGFPE; other bad headers are tracebacks (as --labels too)."""
    data = with_npy_header(npy_bytes(LOGITS), DAMAGED_HEADERS[damage])
    if where == "labels":
        np.save(tmp_path / "logits.npy", LOGITS)
        (tmp_path / "labels.npy").write_bytes(data)
        completed = run_bytes("loss", tmp_path / "logits.npy", "--labels", tmp_path / "labels.npy", "-f", "json",
                              preexec_fn=limit_memory(), timeout=30)
    elif where == "file":
        path = tmp_path / "bad.npy"
        path.write_bytes(data)
        completed = run_bytes("probs", path, "-f", "csv", preexec_fn=limit_memory(), timeout=30)
    else:
        completed = run_bytes("probs", "-", "-f", "csv", input=data, preexec_fn=limit_memory(), timeout=30)
    assert_refused(completed)


def test_jacobian_npy_output_on_full_disk_is_refused_without_sigbus(tmp_path):
    """Issue 10: jacobian -o out.npy (memory-mapped, > 1 GiB) on a full disk dies by SIGBUS, leaves a .part."""
    logits = tmp_path / "logits.npy"
    np.save(logits, np.random.default_rng(0).normal(size=(9000, 128)))  # Jacobian: 1.18 GB of float64
    with tmpfs(tmp_path / "small", "size=4m") as small:
        completed = run_bytes("jacobian", logits, "-o", small / "out.npy", timeout=60)
        assert_refused(completed)
        assert list(small.iterdir()) == []


def _check_probs_json(completed, logits, digits=None):
    assert_contract(completed, codes=(0, 2))
    if completed.returncode == 0:
        document = json.loads(completed.stdout)  # strict: NaN is not JSON
        expected = reference_softmax(logits)
        np.testing.assert_allclose(np.array(document["probs"], dtype=float), expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("precision", ["400", "1000"])
def test_precision_beyond_float64_gives_valid_json_with_the_right_numbers(precision):
    """Issue 10: --precision 400 -f json prints {"probs": [nan, nan, nan]} with exit 0."""
    completed = run_bytes("probs", "3", "2", "1", "-f", "json", "--precision", precision)
    _check_probs_json(completed, [3.0, 2.0, 1.0])


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_precision_307_keeps_a_loss_of_1000_finite(fmt):
    """Issue 10: at --precision 307 a loss of 1000 becomes inf."""
    completed = run_bytes("loss", "0", "1000", "--labels", "0", "-f", fmt, "--precision", "307")
    assert_contract(completed, codes=(0, 2))
    if completed.returncode == 0:
        text = text_of(completed.stdout)
        header, figures = text.splitlines()[:2] if fmt == "csv" else ("", "")  # loss,accuracy: the summary line
        value = json.loads(text)["loss"] if fmt == "json" else float(dict(zip(header.split(","),
                                                                              figures.split(",")))["loss"])
        assert value == 1000.0


@pytest.mark.parametrize("precision", ["99999999999", "-1"])
def test_precision_out_of_range_is_refused_in_one_line(precision):
    """Issue 10: --precision 99999999999 is a traceback."""
    completed = run_bytes("probs", "3", "2", "1", "-f", "csv", "--precision", precision)
    assert_contract(completed, codes=(0, 2))


def test_precision_1000_prints_no_runtime_warning():
    completed = run_bytes("probs", "1", "2", "-f", "csv", "--precision", "1000")
    assert_contract(completed, codes=(0, 2))
    if completed.returncode == 0:
        values = [float(v) for v in text_of(completed.stdout).split(",")]
        np.testing.assert_allclose(values, reference_softmax([1.0, 2.0]), rtol=1e-15)


def _attention_inputs(tmp_path):
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(1, 2)), rng.normal(size=(2, 2))  # 2-D: (L, E) and (S, E)
    v = rng.normal(size=(2, 1, 2, 1))  # batched (2, 1, S, Ev)
    mask = np.ones((1, 2), dtype=bool)  # (L, S): every key attends
    paths = []
    for name, array in dict(q=q, k=k, v=v, mask=mask).items():
        np.save(tmp_path / f"{name}.npy", array)
        paths.append(tmp_path / f"{name}.npy")
    return paths


def test_attention_batched_value_with_mask_behaves_as_without_mask(tmp_path):
    """Issue 10: 2-D Q/K, V of shape (2, 1, 2, 1) and --mask: a broadcasting traceback; without mask it works."""
    q, k, v, mask = _attention_inputs(tmp_path)
    without = run_bytes("attention", q, k, v, "-f", "json")
    with_mask = run_bytes("attention", q, k, v, "--mask", mask, "-f", "json")
    assert_contract(without, codes=(0, 2))
    assert_contract(with_mask, codes=(0, 2))
    assert with_mask.returncode == without.returncode
    if without.returncode == 0:
        masked, plain = json.loads(with_mask.stdout), json.loads(without.stdout)
        assert [entry["role"] for entry in masked.pop("inputs")] == ["q", "k", "v", "mask"]
        assert [entry["role"] for entry in plain.pop("inputs")] == ["q", "k", "v"]
        assert masked == plain


# ---------------------------------------------------------------------------
# Damaged or mislabelled containers
# ---------------------------------------------------------------------------

def _container(kind: str) -> tuple[str, bytes]:
    """(file name, bytes) of a damaged or mislabelled container, from np.save/np.savez and zipfile."""
    saved = npz_bytes(logits=LOGITS)
    if kind == "npz-member-not-npy":
        return "x.npz", rewrite_npz(saved, {"logits.npy": b"these bytes are not an .npy array\n" * 4})
    if kind == "npz-member-truncated-npy":
        return "x.npz", rewrite_npz(saved, {"logits.npy": npy_bytes(LOGITS)[:-5]})
    if kind == "npy-named-npz":
        return "x.npz", npy_bytes(LOGITS)
    if kind == "npz-named-npy":
        return "x.npy", saved
    if kind == "npz-encrypted-flag":
        return "x.npz", set_encrypted_flag(saved)
    if kind == "npz-bzip2":
        return "x.npz", rewrite_npz(saved, {}, compression=zipfile.ZIP_BZIP2)
    if kind == "npz-lzma":
        return "x.npz", rewrite_npz(saved, {}, compression=zipfile.ZIP_LZMA)
    if kind == "npz-damaged-deflate":
        return "x.npz", damage_deflate_stream(npz_bytes(True, logits=np.random.default_rng(2).normal(size=(64, 32))))
    if kind == "npz-truncated":
        return "x.npz", saved[: len(saved) // 2]
    if kind == "npz-member-header-does-not-parse":
        return "x.npz", rewrite_npz(saved, {"logits.npy": with_npy_header(npy_bytes(LOGITS), "{'descr': '<f8', ")})
    if kind == "npz-member-void-negative-shape":
        return "x.npz", rewrite_npz(saved, {"logits.npy": with_npy_header(
            npy_bytes(LOGITS), "{'descr': '|V0', 'fortran_order': False, 'shape': (-1,), }")})
    raise AssertionError(kind)


CONTAINERS = ["npz-member-not-npy", "npz-member-truncated-npy", "npy-named-npz", "npz-named-npy",
              "npz-encrypted-flag", "npz-bzip2", "npz-lzma", "npz-damaged-deflate", "npz-truncated",
              "npz-member-header-does-not-parse", "npz-member-void-negative-shape"]


@pytest.mark.parametrize("kind", CONTAINERS)
def test_damaged_or_mislabelled_container_is_refused_in_one_line(tmp_path, kind):
    """Issue 10: npz members that are not .npy, .npy named .npz and the reverse, encrypted/bzip2/bad deflate."""
    name, data = _container(kind)
    path = tmp_path / name
    path.write_bytes(data)
    completed = run_bytes("probs", path, "-f", "csv", preexec_fn=limit_memory(), timeout=30)
    if kind == "npz-lzma" or kind == "npz-bzip2":
        # A compression zipfile can read is a choice: read it right or refuse it in one line.
        assert_contract(completed, codes=(0, 2))
        if completed.returncode == 0:
            rows = [[float(v) for v in line.split(",")] for line in text_of(completed.stdout).split()]
            np.testing.assert_allclose(rows, reference_softmax(LOGITS), rtol=1e-15)
    else:
        assert_refused(completed)


def test_npz_needing_a_newer_zip_version_is_refused_in_one_line(tmp_path):
    """The long fuzz: a central directory asking for zip version 17.3 raised NotImplementedError."""
    data = bytearray(npz_bytes(logits=LOGITS))
    central = data.find(b"PK\x01\x02")
    data[central + 6:central + 8] = (173).to_bytes(2, "little")  # version needed to extract
    (tmp_path / "x.npz").write_bytes(bytes(data))
    assert "17.3" in assert_refused(run_bytes("probs", tmp_path / "x.npz", "-f", "csv"))


@pytest.mark.parametrize("kind", ["npz-member-not-npy", "npz-encrypted-flag", "npz-damaged-deflate"])
def test_damaged_container_on_stdin_is_refused_in_one_line(kind):
    _, data = _container(kind)
    assert_refused(run_bytes("probs", "-", "-f", "csv", input=data, preexec_fn=limit_memory(), timeout=30))


# ---------------------------------------------------------------------------
# Out of memory
# ---------------------------------------------------------------------------

HUGE_HEADER = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"  # 10**12 elements


@pytest.mark.parametrize("where", ["file", "stdin", "npz-member", "labels-file"])
def test_header_claiming_10_to_the_12_elements_is_refused_in_one_line(tmp_path, where):
    """Issue 10: a tiny file whose header claims 10**12 elements: MemoryError traceback."""
    huge = with_npy_header(npy_bytes(LOGITS), HUGE_HEADER)
    options = dict(preexec_fn=limit_memory(), timeout=30)
    if where == "file":
        (tmp_path / "huge.npy").write_bytes(huge)
        completed = run_bytes("probs", tmp_path / "huge.npy", "-f", "csv", **options)
    elif where == "stdin":
        completed = run_bytes("probs", "-", "-f", "csv", input=huge, **options)
    elif where == "npz-member":
        (tmp_path / "huge.npz").write_bytes(rewrite_npz(npz_bytes(logits=LOGITS), {"logits.npy": huge}))
        completed = run_bytes("probs", tmp_path / "huge.npz", "-f", "csv", **options)
    else:
        (tmp_path / "labels.npy").write_bytes(huge)
        completed = run_bytes("loss", "3", "2", "1", "--labels", tmp_path / "labels.npy", **options)
    assert_refused(completed)


@pytest.fixture(scope="module")
def zip_bombs(tmp_path_factory):
    """Two .npz files of about 130 KB whose member inflates to 128 MiB of zeros."""
    folder = tmp_path_factory.mktemp("bombs")
    n_bytes = 128 << 20
    small_claim = folder / "small_claim.npz"  # header: 3 values; data: 128 MiB
    small_claim.write_bytes(zip_member_of_zeros(
        "logits.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", n_bytes))
    huge_claim = folder / "huge_claim.npz"  # header: 2 GiB; data: 128 MiB
    huge_claim.write_bytes(zip_member_of_zeros(
        "logits.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (134217728, 2), }", n_bytes))
    return {"small-claim": small_claim, "huge-claim": huge_claim}


@pytest.mark.parametrize("bomb", ["small-claim", "huge-claim"])
def test_zip_bomb_ends_in_one_line_under_a_memory_limit(zip_bombs, bomb):
    """Issue 10: a zip bomb: MemoryError traceback. Decompression must be capped to what the header declares."""
    completed = run_bytes("probs", zip_bombs[bomb], "-f", "csv", preexec_fn=limit_memory(), timeout=30)
    if bomb == "huge-claim":
        assert_refused(completed)
    else:
        # Reading the declared 3 values (and refusing the trailing data, or not) are both in the contract.
        assert_contract(completed, codes=(0, 2))


@pytest.fixture(scope="module")
def one_line_csv(tmp_path_factory):
    """A 200 MB CSV that is one line of 100 million zeros."""
    path = tmp_path_factory.mktemp("csv") / "one_line.csv"
    with open(path, "wb") as stream:
        block = b"0," * (1 << 20)
        for _ in range(100):
            stream.write(block)
        stream.write(b"0\n")
    return path


def test_200_mb_one_line_csv_under_a_memory_limit_ends_in_one_line(one_line_csv):
    """Issue 10: a 200 MB one-line CSV under a memory limit: MemoryError traceback."""
    completed = run_bytes("probs", one_line_csv, "-f", "npy", "-o", one_line_csv.with_suffix(".out.npy"),
                          preexec_fn=limit_memory(), timeout=60)
    assert_contract(completed, codes=(0, 2))
    assert leftovers(one_line_csv.parent) == []


def test_attention_weights_20000_squared_under_a_memory_limit_is_refused(tmp_path):
    """Issue 10: attention --weights at L = S = 20000 in float64 (3.2 GB of weights) under a limit: a traceback."""
    x = np.random.default_rng(3).normal(size=(20000, 1))
    for name in "qkv":
        np.save(tmp_path / f"{name}.npy", x)
    completed = run_bytes("attention", tmp_path / "q.npy", tmp_path / "k.npy", tmp_path / "v.npy", "--weights",
                          "-o", tmp_path / "out.npz", preexec_fn=limit_memory(), timeout=60)
    message = assert_refused(completed)
    assert "GiB" in message or "GB" in message or "memory" in message
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# Bad values that were tracebacks or hangs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["file", "stdin"])
def test_csv_field_over_131072_characters_ends_in_one_line(tmp_path, where):
    """Issue 10: a CSV field over 131,072 characters raises _csv.Error."""
    text = "a,b\n1," + "0" * 200_000 + "2\n"  # the long field is the number 2
    if where == "file":
        (tmp_path / "wide.csv").write_text(text)
        completed = run_bytes("probs", tmp_path / "wide.csv", "-f", "csv")
    else:
        completed = run_bytes("probs", "-", "-f", "csv", input=text.encode())
    assert_contract(completed, codes=(0, 2))
    if completed.returncode == 0:
        values = [float(v) for v in text_of(completed.stdout).splitlines()[-1].split(",")]
        np.testing.assert_allclose(values, reference_softmax([1.0, 2.0]), rtol=1e-15)


@pytest.mark.parametrize("spec", ["1:2:99999999999999999999", "1:2:-5", "a:b:c"])
def test_bad_temperature_range_is_refused_in_one_line(spec):
    """Issue 10: --range 1:2:99999999999999999999 is a traceback."""
    assert_refused(run_bytes("temperature-sweep", "3", "2", "1", "--range", spec, "-f", "csv", timeout=20))


@pytest.mark.parametrize("command", ["loss", "topk", "grad", "temperature-sweep"])
@pytest.mark.parametrize("spec", [" ", "\t", ",", " ; "], ids=["space", "tab", "comma", "semicolon"])
def test_labels_of_separators_only_are_one_line_saying_what_labels_are(command, spec):
    """Found by the long fuzz: --labels '\t' read as an empty list of class names ended in an IndexError."""
    line = assert_one_error_line(run(command, "3,2,1", "--labels", spec, "-f", "csv"))
    assert "--labels" in line and "no labels" in line


@pytest.mark.parametrize("args", [
    ["--range", "1:2:10000000"],
    ["--labels", "0", "--bins", "1000000000"],
], ids=["range-10M", "bins-1G"])
def test_unbounded_sweep_sizes_end_quickly_with_a_clear_message(args):
    """Issue 10: --bins 1000000000 and --range 1:2:10000000 run over a minute with no cap."""
    try:
        completed = run_bytes("temperature-sweep", "3", "2", "1", *args, "-f", "csv", timeout=20,
                              preexec_fn=limit_memory())
    except subprocess.TimeoutExpired:
        pytest.fail("ran past 20 s with no cap")
    assert_refused(completed)


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_undecodable_class_name_ends_in_one_line(fmt):
    """Issue 10: --classes $'\\xff,b' is a traceback."""
    completed = run_bytes("probs", "1", "2", "--classes", os.fsencode("\udcff,b"), "-f", fmt)
    assert_contract(completed, codes=(0, 2))
    if completed.returncode == 0 and fmt == "json":
        json.loads(completed.stdout)


def test_undecodable_class_names_file_ends_in_one_line(tmp_path):
    (tmp_path / "names.txt").write_bytes(b"\xff\xfe\nb\n")
    assert_contract(run_bytes("probs", "1", "2", "--classes", tmp_path / "names.txt", "-f", "json"), codes=(0, 2))


@pytest.mark.parametrize("value", ["abc", "", "0"])
def test_bad_softmax_block_bytes_ends_in_one_line(tmp_path, value):
    """Issue 10: SOFTMAX_BLOCK_BYTES=abc is a traceback at import."""
    np.save(tmp_path / "x.npy", LOGITS)
    completed = run_bytes("probs", tmp_path / "x.npy", "-f", "csv", env={"SOFTMAX_BLOCK_BYTES": value}, timeout=20)
    assert_contract(completed, codes=(0, 2))


@pytest.mark.parametrize("args", [
    ["probs", "1", "2", "-t", "1e-320"],
    ["probs", "1e308", "-1e308"],
    ["loss", "1e308", "-1e308", "--labels", "1"],
    ["jacobian", "1e308", "-1e308"],
], ids=["tiny-temperature", "extreme-logits", "loss-extreme", "jacobian-extreme"])
def test_no_raw_numpy_runtime_warning(args):
    """Issue 10: NumPy RuntimeWarnings reach stderr (-t 1e-320, probs 1e308 -1e308, --precision 1000)."""
    completed = run_bytes(*args, "-f", "json")
    assert_contract(completed, codes=(0, 2))
    if completed.returncode == 0:
        json.loads(completed.stdout)


# ---------------------------------------------------------------------------
# Output and streams
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(COMMANDS))
def test_stdout_on_a_full_device_is_refused_in_one_line(name):
    """Issue 10: > /dev/full is a traceback for every command and for --help/--version."""
    with open("/dev/full", "wb") as full:
        completed = run_bytes(*COMMANDS[name], stdout=full)
    assert_refused(completed)


@pytest.mark.parametrize("fmt", ["table", "json", "npy"])
def test_stdout_on_a_full_device_is_refused_in_one_line_for_every_format(fmt):
    with open("/dev/full", "wb") as full:
        completed = run_bytes("probs", "3", "2", "1", "-f", fmt, stdout=full)
    assert_refused(completed)


def _sh(script: str, *args, input: bytes = b"") -> subprocess.CompletedProcess:
    """``sh -c SCRIPT softmax ARGS...``: the script redirects the streams of ``"$@"``."""
    return subprocess.run(["sh", "-c", script, "sh", *softmax_command(), *map(str, args)], input=input,
                          capture_output=True, env=clean_env(), timeout=60)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_closed_stdout_ends_quietly_or_in_one_line(name):
    """Issue 10: closed standard output (>&-) is a traceback for every command and --help/--version."""
    assert_contract(_sh('exec "$@" >&-', *COMMANDS[name]), codes=(0, 2))


@pytest.mark.parametrize("name", [n for n in COMMANDS if not n.endswith("help") and n != "--version"])
def test_closed_stdin_is_refused_in_one_line(name):
    """Issue 10: closed standard input (- <&-) is a traceback for every command."""
    args = COMMANDS[name]
    args = ["attention", "-", "1 0; 0 1", "1 2; 3 4"] if name == "attention" else [args[0], "-", *args[4:]]
    assert_refused(_sh('exec "$@" <&-', *args))


@pytest.mark.parametrize("name", ["--help", "--version"])
def test_closed_stdin_does_not_disturb_help_and_version(name):
    completed = _sh('exec "$@" <&-', *COMMANDS[name])
    assert_contract(completed, codes=(0,))
    assert completed.stdout


def test_closed_stdin_without_inputs_is_refused_in_one_line():
    assert_refused(_sh('exec "$@" <&-', "probs", "-f", "csv"))


def test_error_with_closed_stderr_writes_nothing_to_stdout():
    """Issue 10: with standard error closed, the error message goes to standard output."""
    completed = _sh('exec "$@" 2>&-', "probs", "nan", "1", "-f", "csv")
    assert completed.returncode == 2
    assert completed.stdout == b""


@pytest.mark.parametrize("fmt", ["table", "csv", "tsv", "json"])
def test_reader_gone_before_output_exits_0(tmp_path, fmt):
    """Issue 10: softmax probs x.npy -f table | head -0 exits 1 (Rich's broken-pipe path); exit 0 like the others."""
    np.save(tmp_path / "x.npy", np.random.default_rng(4).normal(size=(200, 10)))
    read_end, write_end = os.pipe()
    os.close(read_end)  # `head -0`: the reader is gone before the first write
    try:
        completed = run_bytes("probs", tmp_path / "x.npy", "-f", fmt, stdout=write_end)
    finally:
        os.close(write_end)
    assert_contract(completed, codes=(0,))


@pytest.mark.parametrize("args", [["--help"], ["probs", "--help"], ["--version"]])
def test_reader_gone_before_help_exits_0(args):
    """`softmax --help | head -0`: Click meets the closed pipe itself and exited 1, the status of a failed gate."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        completed = run_bytes(*args, stdout=write_end)
    finally:
        os.close(write_end)
    assert_contract(completed, codes=(0,))


@pytest.mark.parametrize("fmt", ["npz", "json", "csv"])
def test_bad_temperature_is_refused_before_any_output(tmp_path, fmt):
    """Found by the 100,000-case fuzz: a negative temperature was checked inside the streamed
    computation, after the writer had sent part of an npz or JSON result to the pipe."""
    np.save(tmp_path / "x.npy", np.arange(12).reshape(2, 2, 3))
    completed = run_bytes("probs", tmp_path / "x.npy", "--temperature", "-5", "--log", "-f", fmt)
    assert_refused(completed)
    assert completed.stdout == b""


def test_output_with_a_249_character_name(tmp_path):
    """Issue 10: -o with a valid 249-character file name fails because the temporary name is longer."""
    target = tmp_path / ("p" * 245 + ".csv")
    completed = run_bytes("probs", "3", "2", "1", "-o", target)
    assert_contract(completed, codes=(0,))
    values = [float(v) for v in target.read_text().split(",")]
    np.testing.assert_allclose(values, reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)
    assert leftovers(tmp_path) == []


def test_output_with_a_255_character_name(tmp_path):
    target = tmp_path / ("p" * 251 + ".npy")
    completed = run_bytes("probs", "3", "2", "1", "-o", target)
    assert_contract(completed, codes=(0,))
    np.testing.assert_allclose(np.load(target), reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["-o", "--out-dir", "--out-dir-below"])
def test_read_only_destination_is_refused_in_one_line(tmp_path, how):
    """Issue 10: a read-only folder or mount: tracebacks."""
    np.save(tmp_path / "x.npy", LOGITS)
    with tmpfs(tmp_path / "ro", "size=1m,ro") as folder:
        if how == "-o":
            args = ["-o", folder / "out.csv"]
        elif how == "--out-dir":
            args = ["--out-dir", folder]
        else:
            args = ["--out-dir", folder / "new"]
        assert_refused(run_bytes("probs", tmp_path / "x.npy", *args))
        assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode; see the tmpfs test")
def test_read_only_folder_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert_refused(run_bytes("probs", "3", "2", "1", "-o", folder / "out.csv"))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("how", ["--out-dir", "-o"])
def test_destination_below_a_regular_file_is_refused_in_one_line(tmp_path, how):
    """Issue 10: an --out-dir that cannot be created (under a regular file): a traceback."""
    np.save(tmp_path / "x.npy", LOGITS)
    (tmp_path / "plain").write_text("a file\n")
    target = tmp_path / "plain" / "sub" if how == "--out-dir" else tmp_path / "plain" / "out.csv"
    assert_refused(run_bytes("probs", tmp_path / "x.npy", how, target))
    assert (tmp_path / "plain").read_text() == "a file\n"


@pytest.mark.parametrize("fmt", ["csv", "npy", "npz"])
def test_output_onto_a_full_file_system_is_refused_in_one_line(tmp_path, fmt):
    """Issue 10: -o onto a full file system: a traceback."""
    np.save(tmp_path / "x.npy", np.random.default_rng(5).normal(size=(20000, 10)))  # 1.6 MB, text ~4 MB
    with tmpfs(tmp_path / "full", "size=256k") as folder:
        completed = run_bytes("probs", tmp_path / "x.npy", "-o", folder / f"out.{fmt}")
        assert_refused(completed)
        assert list(folder.iterdir()) == []


def test_out_dir_batch_onto_a_full_file_system_is_refused_in_one_line(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"x{i}.npy", np.random.default_rng(i).normal(size=(20000, 10)))
    with tmpfs(tmp_path / "full", "size=256k") as folder:
        completed = run_bytes("probs", *[tmp_path / f"x{i}.npy" for i in range(3)], "--out-dir", folder, "-f", "csv")
        assert_refused(completed)
        assert leftovers(folder) == []


INPUT_OPTIONS = {
    "--classes": (["probs", "3", "2", "1"], "names.txt", "cat\ndog\nbird\n"),
    "--labels": (["loss", "3", "2", "1"], "labels.txt", "0\n"),
    "--weights": (["loss", "3", "2", "1", "--labels", "0"], "weights.txt", "1\n2\n3\n"),
    "--upstream": (["grad", "3", "2", "1"], "upstream.txt", "1 0 0\n"),
    "--mask": (["attention", "1 0; 0 1", "1 0; 0 1", "1 2; 3 4"], "mask.csv", "1,1\n1,1\n"),
}


@pytest.mark.parametrize("option", list(INPUT_OPTIONS))
def test_an_input_named_by_an_option_is_never_overwritten(tmp_path, option):
    """Issue 10: --classes names.csv -o names.csv --force replaces the class-names file."""
    args, name, content = INPUT_OPTIONS[option]
    source = tmp_path / name
    source.write_text(content)
    completed = run_bytes(*args, option, source, "-o", source, "-f", "csv", "--force")
    assert_refused(completed)
    assert source.read_text() == content


def test_the_logits_input_is_never_overwritten(tmp_path):
    source = tmp_path / "x.csv"
    source.write_text("3,2,1\n")
    assert_refused(run_bytes("probs", source, "-o", source, "--force"))
    assert source.read_text() == "3,2,1\n"


def test_force_onto_a_fifo_is_refused(tmp_path):
    """Issue 10: -o --force replaces a FIFO with a regular file."""
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    try:
        completed = run_bytes("probs", "3", "2", "1", "-o", fifo, "--force", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("blocked opening the FIFO")
    assert_refused(completed)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert leftovers(tmp_path) == []


def test_force_onto_a_device_node_is_refused(tmp_path):
    """Issue 10: as root, -o /dev/null --force would replace /dev/null (a node of our own here)."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    completed = run_bytes("probs", "3", "2", "1", "-o", node, "-f", "csv", "--force")
    assert_refused(completed)
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert leftovers(tmp_path) == []


def test_force_onto_a_symlink_keeps_the_link(tmp_path):
    """Issue 10: -o --force replaces a symlink with a regular file: follow it or refuse it, deliberately."""
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    completed = run_bytes("probs", "3", "2", "1", "-o", link, "--force")
    assert_contract(completed, codes=(0, 2))
    assert link.is_symlink()
    if completed.returncode == 0:
        values = [float(v) for v in target.read_text().split(",")]
        np.testing.assert_allclose(values, reference_softmax([3.0, 2.0, 1.0]), rtol=1e-15)
    else:
        assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_dangling_symlink_is_not_replaced_without_force(tmp_path):
    """Issue 10: a dangling symlink is replaced without --force."""
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "missing.csv")
    completed = run_bytes("probs", "3", "2", "1", "-o", link)
    assert_contract(completed, codes=(0, 2))
    assert link.is_symlink()
    assert leftovers(tmp_path) == []


def _peak_rss_mib(args: list, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    """The child's own peak RSS, reported by a small parent (see benchmarks/_measure.py)."""
    wrapper = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execvp(sys.argv[1], sys.argv[1:])\n"
               "_, status, usage = os.wait4(pid, 0)\nprint(usage.ru_maxrss, file=sys.stderr)\n"
               "sys.exit(os.waitstatus_to_exitcode(status))\n")
    completed = subprocess.run([sys.executable, "-S", "-c", wrapper, *softmax_command(), *map(str, args)],
                               capture_output=True, cwd=cwd, env=clean_env(), timeout=600)
    lines = completed.stderr.decode().splitlines()
    completed.stderr = "\n".join(lines[:-1]).encode()
    return int(lines[-1]) / 1024, completed


@slow
@pytest.mark.parametrize("fmt", ["csv", "tsv", "json"])
def test_streamed_npy_to_text_keeps_the_streaming_memory_bound(tmp_path_factory, fmt):
    """Issue 10: CSV/TSV/JSON output of a streamed 1 GiB .npy peaks at 1.25-1.3 GB; the bound is 150 MiB."""
    folder = tmp_path_factory.getbasetemp() / "one_gib"
    big = folder / "big.npy"
    if not big.exists():
        folder.mkdir(exist_ok=True)
        out = np.lib.format.open_memmap(big, mode="w+", dtype=np.float32, shape=(1 << 24, 16))
        rng = np.random.default_rng(6)
        for start in range(0, out.shape[0], 1 << 20):
            out[start:start + (1 << 20)] = rng.normal(size=(1 << 20, 16)).astype(np.float32)
        out.flush()
        del out
    peak, completed = _peak_rss_mib(["probs", big, "-f", fmt, "-o", tmp_path_factory.mktemp(fmt) / f"out.{fmt}"],
                                    folder)
    assert_contract(completed, codes=(0,))
    assert peak <= 150, f"peak RSS {peak:.0f} MiB"


# ---------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_npy(tmp_path_factory):
    """64 MiB of float32 logits: written in 64 KiB blocks, long enough to be interrupted mid-write."""
    path = tmp_path_factory.mktemp("big") / "big.npy"
    np.save(path, np.random.default_rng(7).normal(size=(1 << 20, 16)).astype(np.float32))
    os.link(path, path.with_name("big_too.npy"))  # a second input for the --out-dir batch
    return path


def _signal_mid_write(args: list, folder: Path, signum: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start ``softmax ARGS``, wait until a temporary file appears in ``folder``, send ``signum``.

    Waits on the events (the file appears, or the process ends), however long a busy machine takes.
    """
    process = subprocess.Popen([*softmax_command(), *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=clean_env(**(env or {})))
    while process.poll() is None:
        if any(p.name.endswith(".part") for p in folder.rglob("*")):
            break
        time.sleep(0.005)
    else:
        process.kill()
        process.communicate()
        pytest.fail("no temporary file appeared while the command ran")
    process.send_signal(signum)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


SIGNALS = {"SIGTERM": (signal.SIGTERM, 143), "SIGHUP": (signal.SIGHUP, 129)}
# The other signals whose default ends a process without a core, as batch schedulers and limits send them.
OTHER_SIGNALS = {"SIGUSR1": signal.SIGUSR1, "SIGUSR2": signal.SIGUSR2, "SIGALRM": signal.SIGALRM,
                 "SIGXCPU": signal.SIGXCPU, "SIGVTALRM": signal.SIGVTALRM}


@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("job", ["probs-npy", "out-dir", "jacobian-npy"])
def test_signal_mid_write_leaves_no_temporary_file_and_exits_quietly(tmp_path, big_npy, job, name):
    """Issue 10: SIGTERM leaves .out.npy.XXXX.part files; handle SIGTERM and SIGHUP like SIGINT."""
    signum, expected_status = SIGNALS[name]
    out = tmp_path / "out"
    out.mkdir()
    env = {"SOFTMAX_BLOCK_BYTES": "65536"}
    if job == "probs-npy":
        args = ["probs", big_npy, "-o", out / "out.npy"]
    elif job == "out-dir":
        args = ["probs", big_npy, big_npy.with_name("big_too.npy"), "--out-dir", out, "-f", "npy"]
    else:
        logits = tmp_path / "logits.npy"
        np.save(logits, np.random.default_rng(8).normal(size=(9000, 128)))  # Jacobian: 1.18 GB, memory-mapped
        args = ["jacobian", logits, "-o", out / "out.npy"]
    completed = _signal_mid_write(args, out, signum, env)
    assert completed.returncode == expected_status, (completed.returncode, text_of(completed.stderr)[-2000:])
    assert "Traceback" not in text_of(completed.stderr)
    assert [p.name for p in out.rglob("*") if p.name.endswith(".part")] == []


@pytest.mark.parametrize("name", list(OTHER_SIGNALS))
def test_a_scheduler_or_limit_signal_mid_write_leaves_no_temporary_file(tmp_path, big_npy, name):
    """SLURM's --signal (USR1, USR2), ulimit -t (XCPU) and timers (ALRM, VTALRM) killed the run by the
    signal, leaving the output's temporary file behind."""
    out = tmp_path / "out"
    out.mkdir()
    completed = _signal_mid_write(["probs", big_npy, "-o", out / "out.npy"], out, OTHER_SIGNALS[name],
                                  {"SOFTMAX_BLOCK_BYTES": "65536"})
    assert completed.returncode == 128 + OTHER_SIGNALS[name], (completed.returncode, text_of(completed.stderr))
    assert "Traceback" not in text_of(completed.stderr)
    assert leftovers(out) == []


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(caught >> (signum - 1) & 1)


def _signal_during_start_up(args: list, signum: int, after: float) -> subprocess.CompletedProcess:
    """Send ``signum`` once the command's handlers are in place (an event, not a guess at timing), ``after``
    seconds later; the command then waits on an open standard input, so the signal always lands in its run.

    Before its handlers exist a process dies by the default action, which nothing in the package could change
    (the interpreter's own start-up, the console script's first imports).
    """
    process = subprocess.Popen([*softmax_command(), *map(str, args)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    # The last of the handlers __main__ installs; Python catches SIGINT itself from early on.
    while process.poll() is None and not _catches(process.pid, QUIET_SIGNALS[-1]):
        time.sleep(0.001)
    time.sleep(after)
    process.send_signal(signum)
    # Standard input stays open until the process has ended: closing it at once (communicate()) raced the signal
    # with an end of input, and the run could settle as "standard input is empty" first (CI saw it twice).
    try:
        process.wait(timeout=120)  # what it prints is a line or two: the pipes never fill
    finally:
        process.stdin.close()
    with process.stdout, process.stderr:
        return subprocess.CompletedProcess(args, process.returncode, process.stdout.read(), process.stderr.read())


@pytest.mark.parametrize("after", [0.0, 0.05, 0.1])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_prints_no_traceback(signum, after):
    """A signal while the command imports (or waits for its input) ends it quietly with 128 + the signal."""
    completed = _signal_during_start_up(["probs", "-", "-f", "csv"], signum, after)
    stderr = text_of(completed.stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert completed.returncode == 128 + signum, (completed.returncode, stderr)


def test_sigint_mid_write_leaves_no_temporary_file(tmp_path, big_npy):
    out = tmp_path / "out"
    out.mkdir()
    completed = _signal_mid_write(["probs", big_npy, "-o", out / "out.npy"], out, signal.SIGINT,
                                  {"SOFTMAX_BLOCK_BYTES": "65536"})
    assert completed.returncode == 130, (completed.returncode, text_of(completed.stderr)[-2000:])
    assert "Traceback" not in text_of(completed.stderr)
    assert leftovers(out) == []


def test_a_name_given_twice_in_an_npz_or_a_json_object_is_refused(tmp_path):
    """adv9: the second of two 'logits' was read silently (Python's zipfile and json keep the last); safetensors
    refuses a name given twice, and so do these now."""
    import io
    import warnings
    import zipfile

    def npy(array) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate as it writes it
        with zipfile.ZipFile(tmp_path / "twice.npz", "w") as archive:
            archive.writestr("logits.npy", npy(np.array([[3.0, 2.0, 1.0]])))
            archive.writestr("logits.npy", npy(np.array([[1.0, 2.0, 3.0]])))
    assert_one_error_line(run("probs", tmp_path / "twice.npz"), "two members named 'logits'")
    (tmp_path / "twice.json").write_text('{"logits": [[3, 2, 1]], "logits": [[1, 2, 3]]}')
    assert_one_error_line(run("probs", tmp_path / "twice.json"), "names 'logits' twice")
    (tmp_path / "record.jsonl").write_text('{"a": 1, "b": 2, "a": 3}\n{"a": 1, "b": 2, "a": 3}\n')
    assert_one_error_line(run("probs", tmp_path / "record.jsonl"), "names 'a' twice")
