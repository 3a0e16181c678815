"""``--scheduler`` through the real entry point: the same numbers as in process, failures as in a batch.

Three commands run as the installed script and start their own ``local:2``
cluster (probs -o, loss -f json, temperature-sweep --fit); the others run
through Typer's CliRunner and connect to this module's LocalCluster of 2
worker processes by its tcp address, so the module pays for one more start-up.
The in-process command is the reference on purpose: the promise under test is
"the same numbers with and without --scheduler" (the core is tested against
independent references elsewhere). ``SOFTMAX_UNIT_BYTES`` makes each small
file several work units.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import assert_one_error_line, run

pytest.importorskip("distributed")


SHARDS, SHARD_ROWS, CLASSES = 4, 250, 61
# 61 float32 classes are 244 bytes a row: units of 40 rows, several per shard.
SPLIT = {"SOFTMAX_UNIT_BYTES": str(40 * CLASSES * 4)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Logits as one file and as shards (the same rows, in order), index labels, target rows."""
    root = tmp_path_factory.mktemp("scheduled")
    rng = np.random.default_rng(15)
    logits = (rng.standard_normal((SHARDS * SHARD_ROWS, CLASSES)) * 3).astype(np.float32)
    labels = rng.integers(0, CLASSES, len(logits))
    labels[::13] = -100
    logits[labels >= 0, labels[labels >= 0]] += 2.0  # better than chance, so a temperature fit exists
    (root / "shards").mkdir()
    for i, part in enumerate(np.split(logits, SHARDS)):
        np.save(root / "shards" / f"shard-{i:05d}.npy", part)
    np.save(root / "one.npy", logits)
    np.save(root / "labels.npy", labels)
    return root


def _ok(completed):
    assert completed.returncode == 0, completed.stderr
    return completed


def _failed_and_error(completed, *fragments, failed=0):
    """Exit 2 as a batch exits: a ``failed:`` line per failed input, one ``error:`` line last, and nothing else
    (the dashboard's note, printed at once, came first: a note is held, and dropped when the run fails)."""
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["failed"] * failed + ["error"], lines
    for fragment in fragments:
        assert fragment in completed.stderr, (fragment, completed.stderr)
    return lines


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part"))


# ------------------------------------------------------------------ local:2 from the command itself


def test_probs_to_npy_is_bit_identical_on_a_split_file(cli, data, tmp_path):
    _ok(cli("probs", data / "one.npy", "-o", tmp_path / "here.npy", "-t", "1.5"))
    completed = _ok(run("probs", data / "one.npy", "-o", tmp_path / "there.npy", "-t", "1.5",
                        "--scheduler", "local:2", env=SPLIT))
    assert completed.stderr.startswith("note: the Dask dashboard is at http")
    assert (tmp_path / "here.npy").read_bytes() == (tmp_path / "there.npy").read_bytes()
    assert not _leftovers(tmp_path)


# What produced a result (its inputs: one file here, shards there) differs between the runs compared; the figures
# do not, to the bit (JSON writes each float's shortest repr).
PROVENANCE = ("command", "version", "inputs", "gates")


def _figures(stdout: str) -> dict:
    return {name: value for name, value in json.loads(stdout).items() if name not in PROVENANCE}


def test_loss_json_is_the_same_text_on_a_split_file(cli, data):
    args = ["loss", data / "one.npy", "--labels", data / "labels.npy", "-f", "json", "--label-smoothing", "0.1"]
    here = _ok(cli(*args))
    there = _ok(run(*args, "--scheduler", "local:2", env=SPLIT))
    assert _figures(there.stdout) == _figures(here.stdout) and json.loads(here.stdout)["loss"] > 0


def test_temperature_sweep_fit_matches_from_the_environment_variable(cli, data):
    args = ["temperature-sweep", data / "one.npy", "--labels", data / "labels.npy", "--fit", "-f", "json"]
    here = _figures(_ok(cli(*args)).stdout)
    completed = _ok(run(*args, env={**SPLIT, "SOFTMAX_SCHEDULER": "local:2"}))
    assert "dashboard" in completed.stderr
    there = _figures(completed.stdout)
    assert set(there) == set(here)
    for name, value in here.items():  # exact sums against the core's pairwise ones: see the README
        # An empty reliability bin has no mean confidence: null in JSON, NaN on both sides.
        np.testing.assert_allclose(np.array(there[name], dtype=float), np.array(value, dtype=float), rtol=1e-11,
                                   atol=0, err_msg=name)


# ------------------------------------------------------------------ the module's cluster, by address


@pytest.mark.parametrize("log", [False, True])
def test_probs_of_shards_give_one_identical_output_per_shard(cli, cluster, data, tmp_path, log):
    flag = ["--log"] if log else []
    _ok(cli("probs", data / "shards", "--out-dir", tmp_path / "here", *flag))
    _ok(cli("probs", data / "shards", "--out-dir", tmp_path / "there", "--scheduler", cluster, *flag, env=SPLIT))
    names = sorted(p.name for p in (tmp_path / "here").iterdir())
    assert names == [f"shard-{i:05d}.npy" for i in range(SHARDS)]
    assert names == sorted(p.name for p in (tmp_path / "there").iterdir())
    for name in names:
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


def test_grad_of_shards_is_the_gradient_of_one_loss_over_all_rows(cli, cluster, data, tmp_path):
    _ok(cli("grad", data / "one.npy", "--labels", data / "labels.npy", "-o", tmp_path / "whole.npy"))
    _ok(cli("grad", data / "shards", "--labels", data / "labels.npy", "--out-dir", tmp_path / "parts",
            "--scheduler", cluster, env=SPLIT))
    parts = np.concatenate([np.load(tmp_path / "parts" / f"shard-{i:05d}.npy") for i in range(SHARDS)])
    assert np.array_equal(parts, np.load(tmp_path / "whole.npy"))


def test_a_subarray_of_subarrays_reads_as_in_process(cli, cluster, tmp_path):
    """An .npy of shape (4,) of ((<f8, (5,)), (2,)) is the (4, 2, 5) array NumPy makes of it, on both paths."""
    header = repr({"descr": (("<f8", (5,)), (2,)), "fortran_order": False, "shape": (4,)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    values = np.arange(40, dtype="<f8").reshape(4, 2, 5) / 7
    (tmp_path / "nested.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
                                          + values.tobytes())
    _ok(cli("probs", tmp_path / "nested.npy", "-o", tmp_path / "here.npy"))
    _ok(cli("probs", tmp_path / "nested.npy", "-o", tmp_path / "there.npy", "--scheduler", cluster))
    assert np.load(tmp_path / "here.npy").shape == (4, 2, 5)
    assert (tmp_path / "here.npy").read_bytes() == (tmp_path / "there.npy").read_bytes()


@pytest.mark.parametrize("command", [["loss", "--reduction", "sum"], ["loss", "--reduction", "none"],
                                     ["topk", "-k", "3"]])
def test_reductions_over_shards_equal_the_joined_file(cli, cluster, data, command):
    options = [*command[1:], "--labels", data / "labels.npy", "-f", "json"]
    here = _ok(cli(command[0], data / "one.npy", *options))
    there = _ok(cli(command[0], data / "shards", *options, "--scheduler", cluster, env=SPLIT))
    assert _figures(there.stdout) == _figures(here.stdout)


def test_zarr_through_probs_and_loss(cli, cluster, data, tmp_path):
    zarr = pytest.importorskip("zarr")
    logits = np.load(data / "one.npy")
    array = zarr.create_array(store=str(tmp_path / "logits.zarr"), shape=logits.shape, chunks=(100, CLASSES),
                              dtype="float32")
    array[:] = logits
    _ok(cli("probs", tmp_path / "logits.zarr", "-o", tmp_path / "zarr.npy", "--scheduler", cluster))
    _ok(cli("probs", data / "one.npy", "-o", tmp_path / "npy.npy"))
    assert (tmp_path / "zarr.npy").read_bytes() == (tmp_path / "npy.npy").read_bytes()
    loss = ["--labels", data / "labels.npy", "-f", "json"]
    assert _figures(_ok(cli("loss", tmp_path / "logits.zarr", *loss, "--scheduler", cluster)).stdout) == \
        _figures(_ok(cli("loss", data / "one.npy", *loss)).stdout)


def test_a_zarr_array_missing_a_chunk_is_said_so(cli, cluster, data, tmp_path):
    """A chunk file lost (a copy cut short) was read as the fill value, rows of a uniform distribution, with exit 0
    and nothing said; Zarr leaves out chunks of only the fill value too, so it is a warning, not a refusal."""
    zarr = pytest.importorskip("zarr")
    logits = np.load(data / "one.npy")
    array = zarr.create_array(store=str(tmp_path / "cut.zarr"), shape=logits.shape, chunks=(100, CLASSES),
                              dtype="float32")
    array[:] = logits
    (tmp_path / "cut.zarr" / "c" / "1" / "0").unlink()
    completed = _ok(cli("probs", tmp_path / "cut.zarr", "-o", tmp_path / "p.npy", "--scheduler", cluster))
    assert f"warning: 1 of {array.nchunks} chunks of {tmp_path / 'cut.zarr'} are not stored and are read as its " \
           "fill value 0.0" in completed.stderr


def test_a_1d_zarr_array_is_one_row_of_classes_as_a_1d_npy(cli, tmp_path):
    """A 1-D array is one row of classes in process and as a .npy on the cluster; as a Zarr array its
    reader divided by zero (ZeroDivisionError, a traceback and exit 1)."""
    zarr = pytest.importorskip("zarr")
    vector = np.array([3, 2, 1, 0], dtype=np.float32)
    array = zarr.create_array(store=str(tmp_path / "vec.zarr"), shape=(4,), chunks=(4,), dtype="float32")
    array[:] = vector
    np.save(tmp_path / "vec.npy", vector)
    _ok(run("probs", tmp_path / "vec.zarr", "-o", tmp_path / "zarr.npy", "--scheduler", "local:1"))
    _ok(cli("probs", tmp_path / "vec.npy", "-o", tmp_path / "npy.npy"))
    assert (tmp_path / "zarr.npy").read_bytes() == (tmp_path / "npy.npy").read_bytes()
    typed = np.array(_ok(cli("probs", "3", "2", "1", "0", "-f", "csv")).stdout.split(","), dtype=float)
    np.testing.assert_allclose(np.load(tmp_path / "zarr.npy"), typed, rtol=1e-6)
    loss = ["--labels", "1", "-f", "json"]
    assert _figures(_ok(run("loss", tmp_path / "vec.zarr", *loss, "--scheduler", "local:1")).stdout) == \
        _figures(_ok(cli("loss", tmp_path / "vec.npy", *loss)).stdout)


@pytest.fixture
def bad_shards(data, tmp_path):
    """The shards with a NaN at row 5 of the middle one."""
    folder = tmp_path / "bad"
    folder.mkdir()
    for i, part in enumerate(np.split(np.load(data / "one.npy"), SHARDS)):
        if i == 2:
            part[5, 3] = np.nan
        np.save(folder / f"shard-{i:05d}.npy", part)
    return folder


def test_a_bad_shard_stops_the_run_naming_it_and_leaves_nothing(cli, cluster, bad_shards, tmp_path):
    out = tmp_path / "out"
    completed = cli("probs", bad_shards, "--out-dir", out, "--scheduler", cluster, env=SPLIT)
    errors = _failed_and_error(completed, "shard-00002.npy, row 5, column 3", "NaN")
    assert len(errors) == 1 and not out.exists()  # the folder it made is removed with the outputs


def test_keep_going_writes_the_other_shards_and_lists_the_bad_one(cli, cluster, data, bad_shards, tmp_path):
    out = tmp_path / "out"
    completed = cli("probs", bad_shards, "--out-dir", out, "--keep-going", "--scheduler", cluster, env=SPLIT)
    errors = _failed_and_error(completed, "1 of 4 inputs failed", failed=1)
    assert errors[0].startswith("failed: NaN in logits")
    assert errors[0].endswith(f"({bad_shards / 'shard-00002.npy'}, row 5, column 3)")
    assert errors[-1] == f"error: 1 of 4 inputs failed: {bad_shards / 'shard-00002.npy'}"
    assert sorted(p.name for p in out.iterdir()) == ["shard-00000.npy", "shard-00001.npy", "shard-00003.npy"]
    expected = np.split(np.load(data / "one.npy"), SHARDS)[3]
    assert np.allclose(np.load(out / "shard-00003.npy"), np.exp(expected) / np.exp(expected).sum(1, keepdims=True),
                       rtol=1e-5)


def test_keep_going_loss_is_over_the_shards_that_succeeded(cli, cluster, data, bad_shards, tmp_path):
    kept = np.r_[0:2 * SHARD_ROWS, 3 * SHARD_ROWS:SHARDS * SHARD_ROWS]
    np.save(tmp_path / "kept.npy", np.load(data / "one.npy")[kept])
    np.save(tmp_path / "kept_labels.npy", np.load(data / "labels.npy")[kept])
    completed = cli("loss", bad_shards, "--labels", data / "labels.npy", "-f", "json", "--keep-going",
                    "--scheduler", cluster, env=SPLIT)
    _failed_and_error(completed, "shard-00002.npy", failed=1)
    here = _ok(cli("loss", tmp_path / "kept.npy", "--labels", tmp_path / "kept_labels.npy", "-f", "json"))
    assert _figures(completed.stdout) == _figures(here.stdout)


# ------------------------------------------------------------------ refused before any cluster is reached


@pytest.mark.parametrize("args, fragment", [
    (["probs", "3", "2", "1"], "not numbers or standard input"),
    (["probs", "{one}"], "give -o FILE.npy or --out-dir DIR"),
    (["probs", "{one}", "-o", "{one}", "--force"], "inputs are never overwritten"),
    (["probs", "{one}", "-o", "{exists}"], "exists; pass --force"),
    (["loss", "{one}", "--labels", "{labels}", "--max-loss", "9", "--report", "junit={one}", "--force"],
     "inputs are never overwritten"),
    (["topk", "{one}", "--labels", "{labels}", "-k", "1", "--min-accuracy", "0", "--report", "markdown={one}",
      "--force"], "inputs are never overwritten"),
    (["loss", "{one}", "--labels", "{labels}", "--max-loss", "9", "-o", "{tmp}/r.json", "--report",
      "junit={tmp}/r.json"], "-o and --report junit would both write"),
    (["probs", "{one}", "-o", "{tmp}/p.csv"], "as .npy files"),
    (["probs", "{shards}", "-o", "{tmp}/p.npy"], "use --out-dir DIR"),
    (["loss", "{shards}", "--labels", "{labels}", "--out-dir", "{tmp}/o"], "one result over all the inputs"),
    (["grad", "{one}", "--upstream", "{one}", "-o", "{tmp}/g.npy"], "--upstream cannot run on a cluster"),
    (["temperature-sweep", "{one}", "--plot", "{tmp}/c.png"], "--plot cannot run on a cluster"),
    (["topk", "{one}", "--classes", "{tmp}/names.txt"], "--classes cannot run on a cluster"),
    (["probs", "{one}", "-o", "{tmp}/p.npy", "--scheduler", "example:8786"], "local:N or a scheduler address"),
])
def test_what_the_cluster_cannot_do_is_one_line_before_connecting(cli, data, tmp_path, args, fragment):
    (tmp_path / "exists.npy").write_bytes(b"kept")
    names = {"one": data / "one.npy", "shards": data / "shards", "labels": data / "labels.npy", "tmp": tmp_path,
             "exists": tmp_path / "exists.npy"}
    args = [a.format(**names) for a in args]
    if "--scheduler" not in args:
        args += ["--scheduler", "tcp://127.0.0.1:9"]  # nothing listens there: a connection would fail otherwise
    completed = cli(*args)
    assert completed.returncode == 2 and completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith("error: ") and fragment in completed.stderr, completed.stderr
    assert (tmp_path / "exists.npy").read_bytes() == b"kept"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system (a tmpfs mounted ro: root writes through any mode bits)."""
    import os
    import subprocess

    folder = tmp_path / "rom"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", folder],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    yield folder
    subprocess.run(["umount", folder], check=True)


@pytest.mark.parametrize("scheduler", ["local:1", "tcp://127.0.0.1:9"])
@pytest.mark.parametrize("args", [["probs", "{one}", "-o", "{rom}/p.npy"],
                                  ["loss", "{one}", "--labels", "{labels}", "-o", "{rom}/l.json"]])
def test_a_read_only_destination_is_the_in_process_line_before_the_cluster_is_reached(data, read_only_folder, args,
                                                                                      scheduler):
    """probs said 'cannot write to standard output: Read-only file system'; loss started the cluster and
    computed everything before failing. Nothing listens at tcp://127.0.0.1:9: the check comes before it."""
    args = [a.format(one=data / "one.npy", labels=data / "labels.npy", rom=read_only_folder) for a in args]
    in_process = assert_one_error_line(run(*args))
    line = assert_one_error_line(run(*args, "--scheduler", scheduler))
    for said in (in_process, line):
        assert f"cannot write in {str(read_only_folder)!r}: Read-only file system" in said and args[-1] in said


def test_without_the_dask_extra_the_error_says_how_to_install_it(cli, data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` meets when it is missing
    completed = cli("probs", data / "one.npy", "-o", tmp_path / "p.npy", "--scheduler", "local:2")
    assert completed.returncode == 2
    assert completed.stderr == "error: --scheduler needs Dask: pip install 'softmax-toolkit[dask]'\n"
    assert not (tmp_path / "p.npy").exists()


def _processes_in(session: int) -> list[bytes]:
    """The command lines of the live processes of this session (Linux's /proc); zombies, already ended, are not."""
    import os
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session \
                    and "\nState:\tZ" not in (entry / "status").read_text():
                found.append((entry / "cmdline").read_bytes())
        except OSError:  # gone meanwhile
            continue
    return found


# When the signal reaches the whole process group: as the cluster starts (multiprocessing's resource tracker is
# there), or once both worker processes are spawned and still importing.
MOMENTS = {"starting": lambda lines: any(b"resource_tracker" in line for line in lines),
           "workers-spawned": lambda lines: sum(b"spawn_main" in line for line in lines) >= 2}


@pytest.mark.parametrize("signum, moment", [
    *[(signum, "workers-spawned") for signum in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM",
                                                 "SIGXCPU", "SIGVTALRM")],
    ("SIGINT", "starting"), ("SIGHUP", "starting")])
def test_a_signal_sent_to_the_whole_process_group_mid_start_prints_nothing(tmp_path, signum, moment):
    """A terminal's Ctrl-C (or a closed terminal, or SLURM's --signal) reaches every process of the group: the
    command, its Dask workers and multiprocessing's resource tracker. The workers printed their tracebacks
    (KeyboardInterrupt in the nanny, during NumPy's import), the tracker, killed and replaced, one for every
    semaphore it had never registered. The command exits 128 + the signal, alone, and leaves no process."""
    import os
    import signal
    import subprocess
    import time

    from conftest import softmax_command

    signum = getattr(signal, signum)
    logits = np.random.default_rng(3).standard_normal((40_000, 256)).astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "SOFTMAX_UNIT_BYTES": str(64 * 256 * 4)}  # 625 units: the run outlasts the cluster's start
    process = subprocess.Popen([*softmax_command(), "probs", tmp_path / "logits.npy", "--scheduler", "local:2",
                                "-o", out / "probs.npy"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, start_new_session=True)
    while process.poll() is None and not MOMENTS[moment](_processes_in(process.pid)):  # the event
        time.sleep(0.005)
    os.killpg(process.pid, signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert stderr == b"" and not stdout
    assert not list(out.iterdir())
    deadline = time.monotonic() + 30  # the resource tracker ends once its last holder has: wait for that event
    while _processes_in(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_in(process.pid)


def test_shards_numbered_without_zero_padding_are_read_in_their_numbers_order(tmp_path):
    """part-10.npy sorts before part-2.npy by name: the labels of one file were paired with the wrong rows."""
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((11 * 3, 4)).astype(np.float32)
    labels = rng.integers(0, 4, len(logits))
    (tmp_path / "shards").mkdir()
    for i, part in enumerate(np.split(logits, 11)):
        np.save(tmp_path / "shards" / f"part-{i}.npy", part)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    sharded = _ok(run("loss", tmp_path / "shards", "--labels", tmp_path / "labels.npy", "--scheduler", "local:1",
                      "-f", "json"))
    whole = _ok(run("loss", tmp_path / "logits.npy", "--labels", tmp_path / "labels.npy", "-f", "json"))
    assert json.loads(sharded.stdout)["loss"] == pytest.approx(json.loads(whole.stdout)["loss"], rel=1e-6)
