"""Running the core's operations on a Dask cluster (``--scheduler``), for shards and arrays past one machine.

Nothing here imports ``dask`` until a cluster is asked for, so without
``--scheduler`` the in-process engine is unchanged; the submodules themselves
load on first use (a command asks :func:`scheduler_address` at every call). A
run is planned as row ranges (:mod:`.units`) of ``.npy`` files or Zarr arrays
on storage every worker reaches; the workers read their rows, call the pure
core and either write array results into a reserved output file at their
offsets or return exact partial sums (:mod:`.operations`, :mod:`.calibration`);
the client connects, retries and collects failures per shard (:mod:`.cluster`)::

    with connect("local:2") as client:
        run = Run.plan(Engine(client), expand_sources(["big.npy"]))
        map_to_npy(run, "softmax", ["out.npy"])

The commands reach it through :mod:`softmax_cli.scheduled`.
"""

import os
from importlib import import_module

SCHEDULER_VARIABLE = "SOFTMAX_SCHEDULER"


def scheduler_address(option: str | None) -> str | None:
    """The scheduler to use: the option, else ``$SOFTMAX_SCHEDULER``, else None (the in-process engine)."""
    chosen = option if option else os.environ.get(SCHEDULER_VARIABLE) or None
    if chosen is not None and not chosen.strip():
        return None
    return chosen


_LAZY = {
    "calibration": ("fit_temperature", "temperature_sweep"),
    "cluster": ("DEFAULT_RETRIES", "Engine", "connect", "dashboard_link"),
    "operations": ("DEFAULT_UNIT_BYTES", "Outcome", "Run", "cross_entropy_terms", "expected_calibration_error",
                   "map_to_npy", "topk"),
    "units": ("ExactSum", "Source", "Unit", "expand_sources", "plan_units"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = sorted([*_MODULE_OF, "SCHEDULER_VARIABLE", "scheduler_address"])
