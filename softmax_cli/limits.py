"""What one run may take: the memory this process can still get, and the documented caps on option sizes.

A size read from a file header or asked for by an option is checked here
before anything that size is allocated, so a header claiming 10**12 values or
``--bins 1000000000`` is one ``error:`` line instead of a MemoryError, the
kernel's OOM killer or an hour of work. The caps are in docs/decisions.md ("Nothing
escapes").
"""

from __future__ import annotations

import math
import os

from .errors import InputError, UsageError

# --precision N: float64 carries 17 significant digits, so no rounding asks for more decimals than that.
MAX_PRECISION = 17
# --range START:STOP:NUM and --bins: far beyond any useful sweep or reliability diagram, far below a hang.
MAX_TEMPERATURES = 10_000
MAX_BINS = 10_000
# NumPy indexes with int64: no array, in memory or planned as units, is larger.
MAX_DECLARED_BYTES = 2**63 - 1


def describe_bytes(count: int) -> str:
    """``count`` bytes for people: ``1.2 GiB``, ``640 MiB``, ``12 KiB``, ``7 bytes``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def _proc_field(path: str, field: str) -> int | None:
    """A ``Name:  N kB`` field of a /proc file, in bytes (None where /proc is not there)."""
    try:
        with open(path, encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate: the machine's MemAvailable and swap, and what RLIMIT_AS leaves.

    None when neither is known (no /proc, no limit): then nothing is refused up front.
    """
    import resource

    bounds = []
    free = _proc_field("/proc/meminfo", "MemAvailable")
    if free is not None:
        bounds.append(free + (_proc_field("/proc/meminfo", "SwapFree") or 0))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    used = _proc_field("/proc/self/status", "VmSize")
    if soft != resource.RLIM_INFINITY and used is not None:
        bounds.append(max(0, soft - used))
    return min(bounds) if bounds else None


def declared_bytes(shape: tuple[int, ...], dtype, what: str) -> int:
    """The bytes of the array ``what`` (a header, an array's metadata) declares, before anything is planned.

    Refuses a dtype without size (NumPy divides by it), a negative dimension,
    and a shape larger than any array can be (NumPy's sizes are int64: a
    product past ``2**63`` bytes wraps). The one check of a declared shape:
    ``.npy`` headers (:func:`softmax_cli.formats.npy.check_header`) and Zarr
    arrays (:mod:`softmax_cli.cluster.units`) both pass through it.
    """
    if dtype.itemsize == 0:
        raise InputError(f"{what} declares dtype {dtype.str!r}, whose elements have no size")
    if not all(isinstance(dimension, int) and not isinstance(dimension, bool) for dimension in shape):
        raise InputError(f"{what} declares shape {shape}, whose dimensions are not all whole numbers")
    if any(dimension < 0 for dimension in shape):
        raise InputError(f"{what} declares a negative dimension: shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_DECLARED_BYTES:
        raise InputError(f"{what} declares shape {shape} of {dtype}: {nbytes:.3g} bytes, more than any array can "
                         f"hold (2**63)")
    return nbytes


def check_memory(needed: int, what: str) -> None:
    """Refuse, naming the sizes, to allocate ``needed`` bytes for ``what`` when the process cannot get them."""
    available = available_bytes()
    if available is not None and needed > available:
        raise InputError(f"{what} would need {describe_bytes(needed)} of memory; {describe_bytes(available)} "
                         "is available (MemAvailable, swap and RLIMIT_AS)")


def check_count(value: int, cap: int, option: str) -> int:
    """An option's size (``--bins``, the NUM of ``--range``) within 1..``cap``."""
    if not 1 <= value <= cap:
        raise UsageError(f"{option} takes 1 to {cap:,}, got {value:,}")
    return value


def bytes_from_environment(variable: str, default: int) -> int:
    """A size in bytes from the environment variable ``variable`` (the tests force tiny ones), else ``default``.

    Read when it is needed, not at import, and before any work starts, so a
    bad value is one line.
    """
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text) if len(text) <= 30 else 0
    except ValueError:
        value = 0
    if value < 1:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise UsageError(f"{variable} must be a whole number of bytes >= 1, got {shown!r}", where="environment")
    return value


def block_bytes(default: int) -> int:
    """Input bytes per streamed block: ``SOFTMAX_BLOCK_BYTES``, else ``default``."""
    return bytes_from_environment("SOFTMAX_BLOCK_BYTES", default)
