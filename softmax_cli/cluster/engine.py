"""Connecting to a Dask cluster and running units on it: retries, failures per shard, progress.

``dask.distributed`` is imported here only when a cluster is asked for, so
the in-process engine never pays for it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, SoftmaxError, UsageError, interrupted_within
from ..limits import describe_bytes
from .units import Unit

INSTALL_HINT = "pip install 'softmax-toolkit[dask]'"
# A worker lost mid-task, or an I/O fault, gets this many more attempts before the unit fails.
DEFAULT_RETRIES = 2
# scheme://host[:port]: a name, a dotted address or a bracketed IPv6 address (inproc:// is another process's).
SCHEDULER_ADDRESS = re.compile(r"(?:tcp|tls|ws|wss)://(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])"
                               r"(?::(?P<port>[0-9]{1,5}))?/?")
# The port `dask scheduler` listens on unless told otherwise.
DEFAULT_SCHEDULER_PORT = 8786
# What to look at when a scheduler does not answer as one.
CHECK_THE_ADDRESS = (f"check the address and port (a scheduler listens on {DEFAULT_SCHEDULER_PORT} by default, its "
                     "dashboard on 8787)")
# How long reaching a scheduler may take, handshake included: Dask's own connect timeout stops short of it.
CONNECT_SECONDS = 10
# How long a scheduler with no worker is given for one to join before the run is refused.
WORKER_WAIT_SECONDS = 30
# While units run: how often the scheduler is asked whether it still has a worker, and how often results are looked for.
WORKER_CHECK_SECONDS = 2
POLL_SECONDS = 0.02
# How long the dashboard of a scheduler started elsewhere may take to show it is there.
DASHBOARD_SECONDS = 1
# What one local worker process holds before any work (Python, NumPy, Dask), and how many share a CPU at most.
WORKER_BYTES = 256 << 20
WORKERS_PER_CPU = 4
# Dask's loggers, raised above CRITICAL unless SOFTMAX_DEBUG=1.
QUIET_LOGGERS = ("distributed", "tornado", "asyncio", "bokeh")
SILENT = logging.CRITICAL + 1


def _local_workers(address: str) -> int | None:
    """N for ``local:N``, None for a well-formed scheduler address; anything else is a usage error.

    Checked here, before Dask sees it: Dask's own parsing raises tracebacks
    for ``tcp://``, ``foo://bar`` or ``tcp://[::1``.
    """
    if not address.startswith("local:"):
        if not SCHEDULER_ADDRESS.fullmatch(address) or not _port_in_range(address):
            raise UsageError(f"--scheduler takes local:N or a scheduler address like tcp://host:8786 "
                             f"(tcp, tls, ws or wss), got {address!r}")
        return None
    count = address.removeprefix("local:")
    if not (count.isascii() and count.isdigit()) or len(count) > 6 or int(count) < 1:
        raise UsageError(f"local:N needs a whole number of workers >= 1, got {address!r}")
    most = most_local_workers()
    if int(count) > most:
        raise UsageError(f"local:{int(count)} asks for more workers than this machine can hold: at most {most} "
                         f"(each takes about {describe_bytes(WORKER_BYTES)} of memory, "
                         f"at most {WORKERS_PER_CPU} per CPU); use local:{most} or a scheduler address")
    return int(count)


def most_local_workers() -> int:
    """How many ``local:N`` workers this machine can hold: memory for each, and a few per CPU."""
    from ..limits import available_bytes

    available = available_bytes()
    by_memory = available // WORKER_BYTES if available is not None else None
    by_cpus = WORKERS_PER_CPU * (os.cpu_count() or 1)
    return max(1, min(by_cpus, by_memory) if by_memory is not None else by_cpus)


def _port_in_range(address: str) -> bool:
    port = SCHEDULER_ADDRESS.fullmatch(address).group("port")
    return port is None or 0 < int(port) < 65536


def _quiet_logging() -> int | None:
    """The level Dask's own log lines are raised to, so they never reach the user's standard error.

    A failed unit or a lost worker is reported as one ``error:`` line; Dask
    would print its retries and tracebacks first. ``SOFTMAX_DEBUG=1`` keeps
    them (None: Dask's defaults).
    """
    import logging

    if os.environ.get("SOFTMAX_DEBUG") == "1":
        return None
    # Dask's config gives some of them a level of their own (distributed.client: warning), which a parent's
    # level does not override: each one that exists by now is raised, and those made later inherit it.
    for name in [*QUIET_LOGGERS, *logging.root.manager.loggerDict]:
        if name.split(".")[0] in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(SILENT)
    return SILENT


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--scheduler needs Dask: {INSTALL_HINT}") from None
    return distributed


@contextmanager
def connect(address: str, *, dashboard: bool = True) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``tcp://host:port`` or ``local:N``), closed on exit.

    ``local:N`` starts a ``LocalCluster`` of N worker processes with one thread
    each on this machine, and stops it on exit.
    """
    workers = _local_workers(address)
    distributed = _import_distributed()
    silence = _quiet_logging()
    if workers is None:
        # The address check allows one trailing slash, which Dask would read as part of the port, and no port,
        # which Dask's connect refuses: the scheduler's own default is meant.
        target = address.removesuffix("/")
        if SCHEDULER_ADDRESS.fullmatch(address).group("port") is None:
            target += f":{DEFAULT_SCHEDULER_PORT}"
        _check_scheduler(target, address)
        try:
            client = distributed.Client(target, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as error:
            raise UsageError(f"cannot reach the Dask scheduler: {error}", where=address) from None
        with client:
            try:  # a scheduler without workers would hold every unit, and the run, for ever
                client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            except TimeoutError:
                raise UsageError(f"the Dask scheduler has no workers (none joined within {WORKER_WAIT_SECONDS} s); "
                                 f"start one: dask worker {target}", where=address) from None
            yield client
        return
    with _signals_held() as release:
        try:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0" if dashboard else None,
                                               silence_logs=silence or logging.WARNING)
        except (RuntimeError, OSError, TimeoutError) as error:  # a worker died as it started ("Nanny failed to start")
            if interrupted_within(error) is not None:
                raise
            raise UsageError(f"the local Dask cluster did not start: {error} A worker process died as it started: "
                             "check the workers' Dask settings (DASK_* variables, dask config), or run without "
                             "--scheduler", where=address) from None
        with cluster:
            release()  # a signal held meanwhile ends the run here, and the cluster is closed
            with distributed.Client(cluster) as client:
                yield client


def _check_scheduler(target: str, address: str) -> None:
    """Refuse, within :data:`CONNECT_SECONDS`, an address where no Dask scheduler answers.

    Dask bounds the connection but not its handshake: a listener that accepts
    and never replies (a dashboard's HTTP port) held ``Client`` forever, and
    an HTTP or other server's reply was decoded as Dask's frame sizes ("out of
    memory: Unable to allocate 3.07 EiB"). So the client first asks the
    address who it is, under one deadline for the whole exchange.
    """
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    arguments = Security().get_connection_args("client")
    scheme = target.split("://")[0]
    if scheme in ("tls", "wss") and arguments["ssl_context"] is None:
        raise UsageError(f"{scheme}:// needs Dask's TLS settings: set distributed.comm.tls.ca-file, "
                         "distributed.comm.tls.client.cert and distributed.comm.tls.client.key in the Dask config "
                         "(or their DASK_DISTRIBUTED__COMM__TLS__* variables)", where=address)

    async def identity():
        comm = await connect(target, timeout=CONNECT_SECONDS, **arguments)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    not_a_scheduler = UsageError(f"cannot reach the Dask scheduler: what answers at this address is not a Dask "
                                 f"scheduler; {CHECK_THE_ADDRESS}", where=address)
    try:
        answer = asyncio.run(asyncio.wait_for(identity(), CONNECT_SECONDS))
    except TimeoutError:
        raise UsageError(f"cannot reach the Dask scheduler: no answer within {CONNECT_SECONDS} s; {CHECK_THE_ADDRESS}",
                         where=address) from None
    except OSError as error:  # refused, unknown host, closed, TLS refused
        raise UsageError(f"cannot reach the Dask scheduler: {error}", where=address) from None
    except Exception as error:
        # Whatever Dask's decoder raises on bytes that are not its protocol (ValueError, MemoryError, msgpack's
        # errors, ...): the peer is not a scheduler. Chained, so that SOFTMAX_DEBUG=1 shows what was raised.
        raise not_a_scheduler from error
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise not_a_scheduler


@contextmanager
def _signals_held() -> Iterator[Callable[[], None]]:
    """Start multiprocessing's resource tracker, and hold the quiet signals but SIGTERM in this thread while the
    local cluster starts; ``release()`` ends that.

    Every process a local cluster starts (multiprocessing's resource tracker,
    the workers, a worker restarted later) is started from this thread or from
    Dask's event loop thread, started here, and keeps the mask through fork
    and exec, so they never see a signal sent to the whole process group (a
    terminal's Ctrl-C, a closed terminal, SLURM's ``--signal``): the workers
    printed their tracebacks (KeyboardInterrupt in the nanny, during NumPy's
    import), and the tracker, killed and replaced, one for every semaphore it
    had never registered. Held, not ignored: one sent meanwhile reaches this
    process on release, and ends the run as any other does. SIGTERM stays
    open, as the nannies stop their workers with it (it was quiet already).
    """
    import signal
    from multiprocessing import resource_tracker

    from ..errors import QUIET_SIGNALS

    held = set(QUIET_SIGNALS) - {signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        resource_tracker.ensure_running()
        # It unblocks SIGINT on its way out, whatever held it before: the workers then got Ctrl-C again.
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        yield lambda: signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def dashboard_link(client) -> str | None:
    """The cluster's dashboard address, to print on standard error (None when it has none).

    A scheduler started with ``--no-dashboard`` still names a dashboard port
    (its HTTP server, for metrics), whose link answers 404: a scheduler this
    process did not start gets its link only when the link answers, within a
    second.
    """
    try:
        link = client.dashboard_link or None
    except (AttributeError, KeyError):  # a scheduler with no HTTP server names no dashboard port
        return None
    if link is None or client.cluster is not None:
        return link
    import urllib.request

    try:
        with urllib.request.urlopen(link, timeout=DASHBOARD_SECONDS):
            return link
    except (OSError, ValueError):  # 404 (urllib's HTTPError is an OSError), refused, no answer in time
        return None


@dataclass
class Failure:
    """A unit's input error, returned as a value by the worker: input errors are deterministic, never retried."""

    error: SoftmaxError


def guarded(function: Callable, unit: Unit, *args) -> Any:
    """Run ``function(unit, *args)`` on a worker; an input error comes back located, anything else is raised.

    I/O faults and crashes are raised so that Dask retries the unit elsewhere.
    """
    from ..core import set_threads

    # One thread per unit: the cluster's workers are the parallelism.
    set_threads(1)
    try:
        return function(unit, *args)
    except SoftmaxError as error:
        return Failure(error.located(unit.source.path))


@dataclass
class Engine:
    """Runs units on a client: ``retries`` per unit, ``on_unit_done(unit)`` after each, failures by source.

    Without a ``client``, ``start()`` makes one when the first units are
    submitted: every check an operation makes on the client (labels, k,
    weights) then refuses a mistake before any cluster starts.
    """

    client: Any = None
    start: Callable[[], Any] | None = None
    retries: int = DEFAULT_RETRIES
    keep_going: bool = False
    on_unit_done: Callable[[Unit], None] | None = None
    failures: list[SoftmaxError] = field(default_factory=list)

    def run(self, units: Sequence[Unit], function: Callable, per_unit_args: Callable[[Unit], tuple] = lambda u: ()
            ) -> dict[int, Any]:
        """``{unit position: result}`` for the units whose source had no failure.

        Without ``keep_going`` the first failure cancels the rest and is raised;
        with it, a failed source's other results are dropped and its error is
        added to :attr:`failures` (one per source).
        """
        if self.client is None:
            self.client = self.start()
        distributed = __import__("distributed")
        arguments = [per_unit_args(unit) for unit in units]
        # One map call submits every task in one message; a submit per unit costs a round trip each.
        submitted = self.client.map(guarded, [function] * len(units), units, *zip(*arguments),
                                    retries=self.retries, pure=False) if units and arguments[0] \
            else self.client.map(guarded, [function] * len(units), units, retries=self.retries, pure=False)
        futures = {future: position for position, future in enumerate(submitted)}
        results: dict[int, Any] = {}
        failed: dict[int, SoftmaxError] = {}
        lost = (distributed.comm.CommClosedError, distributed.client.FutureCancelledError)
        try:
            for future in self._as_completed(list(futures)):
                unit = units[futures[future]]
                try:
                    value = future.result()
                except lost:
                    # Not the unit's fault: a closed connection is an OSError too, and was reported as a read
                    # error of the input; the client cancels every future when it loses the scheduler.
                    raise UsageError("lost the connection to the Dask scheduler; run again once it is back",
                                     where=self.client.scheduler.address) from None
                except distributed.KilledWorker:
                    value = Failure(InputError("the workers running it kept dying (out of memory?)",
                                               source=unit.source.path, where=unit.rows()))
                except OSError as error:
                    # compare's units read two files: name the one that failed.
                    value = Failure(InputError(f"cannot read it: {error.strerror or error}",
                                               source=error.filename or unit.source.path, where=unit.rows()))
                if isinstance(value, Failure):
                    if not self.keep_going:
                        raise value.error
                    failed.setdefault(unit.source_index, value.error)
                else:
                    results[futures[future]] = value
                if self.on_unit_done is not None:
                    self.on_unit_done(unit)
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
        self.failures.extend(failed[index] for index in sorted(failed))
        return {position: value for position, value in results.items()
                if units[position].source_index not in failed}

    def _as_completed(self, futures: list) -> Iterator[Any]:
        """Each future as it completes; refused once the cluster has had no worker for
        :data:`WORKER_WAIT_SECONDS` (every worker died, or was stopped): its units would wait for ever."""
        import time

        distributed = __import__("distributed")
        completed = distributed.as_completed(futures)
        idle_since = checked = None
        while not completed.is_empty():
            batch = completed.next_batch(block=False)
            if batch:
                idle_since = None
                yield from batch
                continue
            now = time.monotonic()
            if checked is None or now - checked >= WORKER_CHECK_SECONDS:
                checked = now
                if self.client.scheduler_info().get("workers"):
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= WORKER_WAIT_SECONDS:
                    raise UsageError(f"the Dask cluster has had no worker for {WORKER_WAIT_SECONDS} s (they died, "
                                     "out of memory?, or were stopped), so its work would wait for ever; start "
                                     "workers, or run again with more memory a worker",
                                     where=self.client.scheduler.address)
            time.sleep(POLL_SECONDS)
