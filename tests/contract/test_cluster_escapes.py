"""``--scheduler``: what is wrong is one ``error:`` line before the cluster starts, and Dask's logs never reach stderr.

Every check here runs through the installed ``softmax`` in a subprocess and
must fail before any cluster starts (its ``note:`` line about the dashboard
never appears), except the last ones, which run a real ``LocalCluster`` of
one worker process and read damaged files on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_one_error_line, run

pytest.importorskip("distributed")

MALFORMED = ["tcp://", "://", "foo://bar", "tcp://[::1", "inproc://", "tcp://host:99999", "tcp://a b:1",
             "tcp://host:port", "local:", "local:-1", "local:１"]


@pytest.fixture
def logits(tmp_path):
    path = tmp_path / "logits.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(4, 3))
    return path


@pytest.mark.parametrize("address", MALFORMED)
def test_a_malformed_address_is_one_line_naming_it(logits, tmp_path, address):
    line = assert_one_error_line(run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", address))
    assert repr(address) in line
    assert not (tmp_path / "p.npy").exists()


def test_local_n_is_bounded_by_the_machine_and_says_so(logits, tmp_path):
    line = assert_one_error_line(run("loss", logits, "--labels", "0,1,2,0", "-f", "json",
                                     "--scheduler", "local:999"))
    assert "more workers than this machine can hold: at most" in line and "memory" in line


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e3", "9" * 5000])
def test_a_malformed_unit_size_is_refused_before_the_cluster_starts(logits, value):
    line = assert_one_error_line(run("loss", logits, "--labels", "0,1,2,0", "-f", "json", "--scheduler", "local:1",
                                     env={"SOFTMAX_UNIT_BYTES": value}))
    assert "SOFTMAX_UNIT_BYTES must be a whole number of bytes >= 1" in line


def test_an_npy_header_larger_than_its_file_is_refused_before_planning(tmp_path):
    # 192 bytes declaring 2**45 rows: the same check as in process, before any unit is planned.
    path = tmp_path / "huge.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**45, 3)}
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        file.write(b"\0" * (192 - file.tell()))
    line = assert_one_error_line(run("loss", path, "--labels", "0", "-f", "json", "--scheduler", "local:1"))
    assert "declares shape" in line and str(path) in line


def test_an_npy_header_with_a_boolean_dimension_is_refused_before_planning(tmp_path):
    # (True, 6) was read as (1, 6) on the cluster, and a traceback in process: the one check refuses it in both.
    path = tmp_path / "odd.npy"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (True, 6), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(48))
    line = assert_one_error_line(run("probs", path, "-o", tmp_path / "p.npy", "--scheduler", "local:1"))
    assert "(True, 6)" in line and str(path) in line
    assert not (tmp_path / "p.npy").exists()


MISTAKES = {  # an option or labels that do not fit the logits (4 x 3): the client knows before any unit runs
    "topk -k past the classes": (["topk", "-k", "9", "-f", "json"], "got k = 9"),
    "topk, labels of another length": (["topk", "--labels", "0,1,2,0,1", "-f", "json"], "one class index per row"),
    "loss, labels of another length": (["loss", "--labels", "0,1,2,0,1", "-f", "json"], "do not fit"),
    "loss, a label past the classes": (["loss", "--labels", "0,1,7,0", "-f", "json"], "7"),
    "grad, labels of another length": (["grad", "--labels", "0,1,2,0,1", "--out-dir", "{out}"], "do not fit logits"),
    "temperature-sweep, labels of another length": (["temperature-sweep", "--labels", "0,1", "-f", "json"],
                                                    "do not fit"),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_the_client_can_see_is_refused_before_the_cluster_starts(logits, tmp_path, case):
    arguments, fragment = MISTAKES[case]
    arguments = [argument.replace("{out}", str(tmp_path / "out")) for argument in arguments]
    line = assert_one_error_line(run(arguments[0], logits, *arguments[1:], "--scheduler", "local:1"))
    assert fragment in line
    assert not any((tmp_path / "out").rglob("*"))  # no output, whole or partial


EMPTY_RUNS = {  # every --scheduler command, on an input with no rows; the logits are refused before the labels
    "probs": ["probs", "{input}", "-o", "{tmp}/out/p.npy"],
    "grad": ["grad", "{input}", "--labels", "1", "-o", "{tmp}/out/g.npy"],
    "loss": ["loss", "{input}", "--labels", "1", "-f", "json"],
    "topk": ["topk", "{input}", "-f", "json"],
    "temperature-sweep": ["temperature-sweep", "{input}", "-f", "json"],
    "compare": ["compare", "{input}", "{input}", "-f", "json"],
}


@pytest.mark.parametrize("shape", [(0, 8), (0,), (4, 0)])
@pytest.mark.parametrize("command", EMPTY_RUNS)
def test_an_empty_npy_is_refused_as_in_process_before_the_cluster_starts(tmp_path, command, shape):
    """compare and temperature-sweep died with a traceback (exit 1); probs and topk wrote a (0, 8) result."""
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape, dtype=np.float32))
    (tmp_path / "out").mkdir()
    arguments = [a.format(input=path, tmp=tmp_path) for a in EMPTY_RUNS[command]]
    here = assert_one_error_line(run(*arguments), f"the array is empty (shape {shape})", str(path))
    assert assert_one_error_line(run(*arguments, "--scheduler", "local:1")) == here  # no dashboard note: no cluster
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("command", EMPTY_RUNS)
def test_an_empty_zarr_array_or_shard_is_refused_before_the_cluster_starts(tmp_path, command):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "empty.zarr"
    zarr.create_array(str(path), shape=(0, 8), chunks=(4, 8), dtype="f4")
    (tmp_path / "out").mkdir()
    arguments = [a.format(input=path, tmp=tmp_path) for a in EMPTY_RUNS[command]]
    line = assert_one_error_line(run(*arguments, "--scheduler", "local:1"))
    assert line == f"error: the array is empty (shape (0, 8)) ({path})"
    # An empty shard among others is named, not read as no rows.
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "a.npy", np.arange(16, dtype=np.float32).reshape(2, 8))
    np.save(tmp_path / "shards" / "b.npy", np.zeros((0, 8), dtype=np.float32))
    arguments = [a.format(input=tmp_path / "shards", tmp=tmp_path) for a in EMPTY_RUNS[command]]
    if command in ("probs", "grad"):  # several inputs: one output each
        arguments[-2:] = ["--out-dir", str(tmp_path / "out")]
    line = assert_one_error_line(run(*arguments, "--scheduler", "local:1"))
    assert line == f"error: the array is empty (shape (0, 8)) ({tmp_path / 'shards' / 'b.npy'})"
    assert not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- on a real cluster of one worker


def _zarr_array(tmp_path, name="logits.zarr"):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / name
    array = zarr.create_array(str(path), shape=(6, 3), chunks=(2, 3), dtype="f4")
    array[:] = np.arange(18, dtype=np.float32).reshape(6, 3)
    return path


def run_module(*args, env=None):
    """``python -m softmax_cli ARGS``: a spawned worker re-imports the main module, which -m guards as pip's
    console script does (a launcher without ``if __name__ == "__main__"`` would start a second command)."""
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "softmax_cli", *map(str, args)], input=b"", capture_output=True,
                          env=environment, timeout=300, text=False)


def _only_error(completed, *fragments) -> str:
    """Exit 2: the dashboard's note, then exactly one ``error:`` line, and nothing from Dask's loggers."""
    stderr = completed.stderr.decode()
    assert completed.returncode == 2, stderr
    assert not completed.stdout
    lines = [line for line in stderr.splitlines() if not line.startswith("note: the Dask dashboard")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_a_chunk_that_does_not_decode_is_one_line_naming_the_array(tmp_path):
    path = _zarr_array(tmp_path)
    chunk = next(p for p in (path / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"\x00garbage, not a compressed chunk" * 3)
    _only_error(run_module("loss", path, "--labels", "0,1,2,0,1,2", "-f", "json", "--scheduler", "local:1"),
                "cannot read this Zarr array's rows", str(path))


@pytest.mark.parametrize("damaged_row", [0, 3000], ids=["read-by-the-client", "read-by-a-worker"])
def test_a_damaged_chunk_among_many_leaves_no_asyncio_noise(tmp_path, damaged_row):
    """zarr's other chunk reads were left pending by the failed one; when the process that read (the client's
    probabilities check for the first rows, else a worker) ended, asyncio printed "Task was destroyed but it is
    pending!" and unraisable coroutine errors, dozens of lines after (or before) the one error line."""
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "many.zarr"
    array = zarr.create_array(str(path), shape=(6000, 3), chunks=(5, 3), dtype="f4")
    array[:] = np.random.default_rng(20).standard_normal((6000, 3)).astype(np.float32)
    (path / "c" / str(damaged_row // 5) / "0").write_bytes(b"\x00garbage, not a compressed chunk" * 3)
    for _ in range(3):  # the pending reads are destroyed at a moment that varies; every run must be clean
        _only_error(run_module("probs", path, "-o", tmp_path / "p.npy", "--scheduler", "local:1"),
                    "cannot read this Zarr array's rows", str(path))
        assert not (tmp_path / "p.npy").exists()


def test_a_zero_chunk_side_in_zarr_json_is_one_line(tmp_path):
    path = _zarr_array(tmp_path)
    meta = json.loads((path / "zarr.json").read_text())
    meta["chunk_grid"]["configuration"]["chunk_shape"] = [0, 3]
    (path / "zarr.json").write_text(json.dumps(meta))
    line = assert_one_error_line(run("loss", path, "--labels", "0,1,2,0,1,2", "-f", "json", "--scheduler",
                                     "local:1"))
    assert str(path) in line


@pytest.fixture(scope="module")
def one_worker():
    from softmax_cli.cluster import connect

    with connect("local:1", dashboard=False) as client:
        client.wait_for_workers(1)
        yield client


def _planned(client, path):
    from softmax_cli.cluster import Engine, Run, expand_sources

    return Run.plan(Engine(client), expand_sources([path]), unit_bytes=48)


def test_a_shard_cut_short_after_planning_names_its_path_once(one_worker, tmp_path):
    from softmax_cli.cluster import map_to_npy
    from softmax_cli.errors import InputError

    path = tmp_path / "shard.npy"
    np.save(path, np.ones((40, 3), dtype=np.float32))
    run_ = _planned(one_worker, path)
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - 100)
    with pytest.raises(InputError) as caught:
        map_to_npy(run_, "softmax", [tmp_path / "out.npy"])
    assert "truncated" in str(caught.value) and str(caught.value).count(str(path)) == 1


def test_a_shard_that_vanishes_mid_run_leaves_dask_silent(one_worker, tmp_path, capfd):
    from softmax_cli.cluster import map_to_npy
    from softmax_cli.errors import InputError

    path = tmp_path / "shard.npy"
    np.save(path, np.ones((40, 3), dtype=np.float32))
    run_ = _planned(one_worker, path)
    path.unlink()
    with pytest.raises(InputError, match="cannot read it"):
        map_to_npy(run_, "softmax", [tmp_path / "out.npy"])
    one_worker.run(lambda: None)  # every worker has answered since, so whatever it logged has been written
    assert capfd.readouterr().err == ""


def test_a_local_cluster_whose_workers_cannot_start_is_one_line(logits, tmp_path):
    """adv9: workers killed as they started gave "RuntimeError: Nanny failed to start." and 120 lines of traceback;
    a worker preload that cannot be imported fails the same way, every time."""
    completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", "local:1",
                    env={"DASK_DISTRIBUTED__WORKER__PRELOAD": '["no_such_module_for_softmax"]'})
    line = assert_one_error_line(completed, "the local Dask cluster did not start", "Nanny failed to start")
    assert "(local:1)" in line
    assert not (tmp_path / "p.npy").exists()
