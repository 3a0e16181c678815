"""Running the core's operations on a Dask cluster (``--scheduler``), for shards and arrays past one machine.

Nothing here imports ``dask`` until a cluster is asked for, and the commands
import this package only for ``--scheduler`` (:mod:`softmax_cli.scheduled`),
so without it the in-process engine is unchanged. A run is planned as row
ranges (:mod:`.units`) of ``.npy`` files or Zarr arrays on storage every
worker reaches; the workers read their rows, call the pure core and either
write array results into a reserved output file at their offsets or return
exact partial sums (:mod:`.operations`, :mod:`.calibration`); the client
connects, retries and collects failures per shard (:mod:`.cluster`)::

    with connect("local:2") as client:
        run = Run.plan(Engine(client), expand_sources(["big.npy"]))
        map_to_npy(run, "softmax", ["out.npy"])
"""

from .calibration import fit_temperature, temperature_sweep
from .comparison import divergence_rows
from .engine import DEFAULT_RETRIES, Engine, connect, dashboard_link
from .operations import DEFAULT_UNIT_BYTES, Outcome, Run, cross_entropy_terms, map_to_npy, topk
from .units import ExactSum, Source, Unit, expand_sources, plan_units

__all__ = [
    "DEFAULT_RETRIES", "DEFAULT_UNIT_BYTES", "Engine", "ExactSum", "Outcome", "Run", "Source", "Unit", "connect",
    "cross_entropy_terms", "dashboard_link", "divergence_rows", "expand_sources", "fit_temperature",
    "map_to_npy", "plan_units", "temperature_sweep", "topk",
]
