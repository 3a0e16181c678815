"""The long fuzz run by hand: the cases of ``tests/contract/test_fuzz.py``, as many as asked, every failure counted.

    python fuzz/run.py --cases 100000            # in process (Typer's CliRunner), fast
    python fuzz/run.py --cases 2000 --subprocess # real processes under a memory limit
                                                 # (also hostile '|V0' headers, signals)
    python fuzz/run.py --cases 200 --cluster     # the --scheduler path on a real LocalCluster of one worker
                                                 # (.npy and Zarr arrays with hostile headers and chunks)
    python fuzz/run.py --seconds 1800 ...        # or as many cases as fit in a time budget

Prints the number of cases, the number that broke the "nothing escapes"
property, the kinds of failure with their counts, and a few reproducers per
kind. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzz_cases import (  # noqa: E402
    HEADER_DESCRS,
    SIGNAL_PRONE_DESCRS,
    cases,
    cluster_cases,
    lines_before_error,
    run_in_process,
    run_in_subprocess,
)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402


def kind_of(problem: str) -> str:
    """A failure's kind: its message without the values that differ from case to case."""
    return problem.split(":")[0] if problem.startswith(("left ", "ran past")) else problem[:90]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--subprocess", action="store_true", help="run each case as a real process")
    parser.add_argument("--cluster", action="store_true", help="run --scheduler cases against a real LocalCluster")
    parser.add_argument("--seconds", type=float, default=None, help="stop drawing cases after this long")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one case may take before it counts as a hang (a busy machine needs more)")
    parser.add_argument("--reproducers", type=int, default=3, help="reproducers printed per kind of failure")
    arguments = parser.parse_args()

    if arguments.cluster:
        return with_cluster(lambda address: fuzz_with(arguments, cluster_cases(address), lambda case: run_in_process(
            case, seconds=120, before_error=lines_before_error(case))))
    runner = run_in_subprocess if arguments.subprocess else run_in_process
    if arguments.timeout is not None:
        runner = functools.partial(runner, seconds=arguments.timeout)
    descrs = tuple(HEADER_DESCRS + (SIGNAL_PRONE_DESCRS if arguments.subprocess else []))
    return fuzz_with(arguments, cases(descrs=descrs), runner)


def with_cluster(work) -> int:
    """``work(address)`` with a LocalCluster of one worker process running, stopped afterwards."""
    from softmax_cli.cluster import connect

    with connect("local:1", dashboard=False) as client:
        client.wait_for_workers(1)
        return work(client.scheduler.address)


class OutOfTime(Exception):
    """The --seconds budget is spent."""


def fuzz_with(arguments, strategy, runner) -> int:
    kinds: dict[str, list[str]] = collections.defaultdict(list)
    counts = collections.Counter()
    start = time.monotonic()
    mode = "cluster" if arguments.cluster else "subprocess" if arguments.subprocess else "in process"

    @settings(max_examples=arguments.cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        if arguments.seconds is not None and time.monotonic() - start > arguments.seconds:
            raise OutOfTime
        counts["cases"] += 1
        problems = runner(case)
        if problems:
            counts["failed"] += 1
            for problem in problems:
                kinds[kind_of(problem)].append(case.reproducer())
            # At once too, so a long run shows what it found before it ends.
            print(f"failed: {problems} {case.reproducer()[:600]}", file=sys.stderr, flush=True)
        if counts["cases"] % 100 == 0:
            print(f"{counts['cases']} cases, {counts['failed']} failed, {time.monotonic() - start:.0f} s",
                  file=sys.stderr, flush=True)

    try:
        fuzz()
    except OutOfTime:
        pass
    print(f"{counts['cases']} cases ({mode}), "
          f"{counts['failed']} failed, {time.monotonic() - start:.0f} s")
    for kind, reproducers in sorted(kinds.items(), key=lambda item: -len(item[1])):
        print(f"\n{len(reproducers):6d}  {kind}")
        for reproducer in reproducers[: arguments.reproducers]:
            print(f"        {reproducer[:400]}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
