"""``--scheduler ADDRESS``: reaching a scheduler, or one ``error:`` line within a bounded time.

Each test starts what answers at the address itself, on a free loopback port:
a listener that accepts and never replies, servers that answer with HTTP or
junk bytes, a real ``dask scheduler`` process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_error_line, run, softmax_command

pytest.importorskip("distributed")

# Dask's own connect gives up after 10 s, but not in its handshake; the whole connect now has that deadline.
LONGEST_CONNECT = 40


@pytest.fixture
def logits(tmp_path):
    path = tmp_path / "logits.npy"
    np.save(path, np.random.default_rng(2).standard_normal((50, 7)).astype(np.float32))
    return path


def _serve(answer: bytes | None):
    """A loopback listener's address; each connection gets ``answer`` and is closed, or (None) is held silent."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed by the test
                return
            if answer is None:
                held.append(connection)
            else:
                connection.sendall(answer)
                connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, f"tcp://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                                    bytes(range(256)) * 16],
                         ids=["silent", "http", "junk"])
def test_what_is_not_a_scheduler_is_one_line_within_the_deadline(logits, tmp_path, answer):
    """A listener that never replied hung the run forever (Dask's handshake has no deadline); an HTTP server's
    reply was read as frame sizes ('out of memory: Unable to allocate 3.07 EiB'), junk as 'Maximum allowed
    dimension exceeded'."""
    server, address = _serve(answer)
    try:
        completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", address, timeout=LONGEST_CONNECT)
    finally:
        server.close()
    line = assert_one_error_line(completed, "cannot reach the Dask scheduler", f"({address})")
    assert "memory" not in line and "dimension" not in line
    assert not (tmp_path / "p.npy").exists()


def test_tls_without_dask_tls_settings_is_one_line_saying_so(logits, tmp_path):
    """tls:// gave a TypeError traceback ('TLS expects a ssl_context argument'), exit 1."""
    completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", "tls://127.0.0.1:9")
    assert_one_error_line(completed, "tls:// needs Dask's TLS settings", "distributed.comm.tls")


@contextmanager
def _dask_cluster(folder: Path, workers: int = 1, nanny: bool = True) -> Iterator[tuple[str, subprocess.Popen,
                                                                                     subprocess.Popen]]:
    """A real ``dask scheduler`` (no dashboard) and ``dask worker`` processes on free loopback ports, stopped on
    exit."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "wb"))
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", str(workers),
                               "--nthreads", "1", "--no-dashboard", "--local-directory", str(folder),
                               *([] if nanny else ["--no-nanny"])],
                              stdout=subprocess.DEVNULL, stderr=open(folder / "worker.log", "wb")) if workers else None
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:  # the event: the scheduler answers, with its workers
            if workers:
                client.wait_for_workers(workers, timeout=60)
        yield address, scheduler, worker
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def scheduler_process(tmp_path_factory):
    with _dask_cluster(tmp_path_factory.mktemp("scheduler")) as (address, _, _):
        yield address


def _tasks_on(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=10) as client:
        return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def _killed_mid_run(folder: Path, address: str, victim: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    """``probs`` of a large file on the cluster at ``address``, ``victim`` (its scheduler or worker) killed once the
    run's units are submitted; the run's outcome."""
    logits = folder / "big.npy"
    np.save(logits, np.random.default_rng(4).standard_normal((20_000, 64)).astype(np.float32))
    process = subprocess.Popen([*softmax_command(), "probs", logits, "-o", folder / "p.npy", "--scheduler", address],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "SOFTMAX_UNIT_BYTES": "2560"})
    while process.poll() is None and not _tasks_on(address):  # the event: the run's units are submitted
        pass
    victim.kill()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()  # a hang is the failure; it must not outlive the test
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_a_scheduler_lost_mid_run_is_one_line_naming_it_not_the_input(tmp_path):
    """kill -9 of the scheduler mid-run printed 'distributed.client - ERROR -', a 30-line traceback, then blamed
    the input: 'cannot read it: in <TCP (closed) ConnectionPool.gather ...>: Stream is closed (big.npy, rows
    44250..44499)'."""
    with _dask_cluster(tmp_path) as (address, scheduler, _):
        completed = _killed_mid_run(tmp_path, address, scheduler, LONGEST_CONNECT)
    assert_one_error_line(completed, "lost the connection to the Dask scheduler", f"({address})")
    assert not (tmp_path / "p.npy").exists() and not list(tmp_path.glob("*.part"))


def test_a_trailing_slash_is_the_same_scheduler(logits, tmp_path, scheduler_process):
    """'tcp://127.0.0.1:8786/' passed the address check, then failed with "invalid literal for int()"."""
    completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", scheduler_process + "/")
    assert completed.returncode == 0, completed.stderr
    assert np.load(tmp_path / "p.npy").shape == (50, 7)


def test_a_scheduler_without_a_dashboard_gets_no_dashboard_note(logits, tmp_path, scheduler_process):
    """'dask scheduler --no-dashboard' still named a dashboard link, which answered 404."""
    completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", scheduler_process)
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr
    assert np.load(tmp_path / "p.npy").shape == (50, 7)


def test_a_scheduler_without_workers_is_one_line_not_a_hang(logits, tmp_path):
    """A tcp:// scheduler with no worker held every unit, and the run, for ever after the note."""
    from softmax_cli.cluster.engine import WORKER_WAIT_SECONDS

    with _dask_cluster(tmp_path, workers=0) as (address, _, _):
        completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", address,
                        timeout=LONGEST_CONNECT + WORKER_WAIT_SECONDS)
    assert_one_error_line(completed, "the Dask scheduler has no workers", f"dask worker {address}")
    assert not (tmp_path / "p.npy").exists() and not list(tmp_path.glob("*.part"))


def test_a_cluster_whose_only_worker_dies_is_one_line_not_a_hang(tmp_path):
    """The one worker (no nanny to restart it) killed mid-run: the run waited for ever for a worker."""
    from softmax_cli.cluster.engine import WORKER_WAIT_SECONDS

    with _dask_cluster(tmp_path, nanny=False) as (address, _, worker):
        completed = _killed_mid_run(tmp_path, address, worker, LONGEST_CONNECT + 2 * WORKER_WAIT_SECONDS)
    assert_one_error_line(completed, "the Dask cluster has had no worker", f"({address})")
    assert not (tmp_path / "p.npy").exists() and not list(tmp_path.glob("*.part"))


def test_an_address_without_a_port_is_the_default_port(logits, tmp_path):
    """'tcp://127.0.0.1' said 'what answers at this address is not a Dask scheduler' when nothing answered:
    Dask's connect refuses an address without a port; the scheduler's default port, 8786, is meant."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8786)) == 0:
            pytest.skip("something listens on 8786 here")
    completed = run("probs", logits, "-o", tmp_path / "p.npy", "--scheduler", "tcp://127.0.0.1",
                    timeout=LONGEST_CONNECT)
    line = assert_one_error_line(completed, "cannot reach the Dask scheduler", "(tcp://127.0.0.1)")
    assert "not a Dask scheduler" not in line  # nothing answers on 8786: nothing to say it is not one
