"""The ``compare`` report on a terminal: KL statistics, agreement, perplexities and a histogram of per-row KL.

In the spirit of llama-perplexity's "KL divergence statistics" block: mean ±
standard error, the maximum and the quantiles from the top, top-1 agreement,
then (with labels) the perplexities and Δp, and a histogram of per-row KL in
log-spaced bins whose bars take the width the console leaves. Imported only
when a table is drawn.
"""

from __future__ import annotations

import math

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .result import Result
from .tablecells import Column, bar, draw_table, head_and_tail, labelled, number_format, table_width

# The histogram's bars never grow past this, however wide the console.
HISTOGRAM_BAR = 60
# Log-spaced bins: at most this many, each a whole number of bins per decade.
MAX_BINS = 12


def _level_name(level: float) -> str:
    return "median" if level == 0.5 else f"{100 * level:g}%"


def _scientific(value, precision: int | None) -> str:
    """Figures that span decades (KL, Δp): one mantissa length for all, so their exponents line up."""
    value = float(value) + 0.0
    return f"{value:.{3 if precision is None else precision}e}" if math.isfinite(value) else str(value)


def _percent(fraction: float, precision: int | None) -> str:
    return f"{100 * fraction:.{2 if precision is None else precision}f}%" if math.isfinite(fraction) else str(fraction)


def _figures(console: Console, lines: list[tuple[str, str, str]]) -> None:
    """``name  value  ± error`` lines, values right-aligned; where that is too wide, each error under its value.

    Narrower still, the names give way: ``labelled`` lines, a name on a line of its own where need be.
    """
    table = Table(show_header=False, box=None, padding=(0, 1, 0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(justify="right", no_wrap=True)
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    if sum(widths) + 9 <= console.width:
        table.add_column(no_wrap=True)
        for line in lines:
            table.add_row(*line)
    elif widths[0] + max(widths[1:]) + 6 <= console.width:
        for name, value, error in lines:
            table.add_row(name, value)
            if error:
                table.add_row("", error)
    else:
        for line in labelled([(name, [value, error] if error else [value]) for name, value, error in lines],
                             console.width):
            console.print(line)
        return
    console.print(table)


def _statistics(a: dict[str, np.ndarray], precision: int | None) -> list[Column]:
    """Mean ± stderr, max and the quantiles (highest first) of KL, and of Δp with labels."""
    levels = a["quantile_levels"]
    order = np.argsort(levels)[::-1]
    names = ["mean", "rms", "max", *(_level_name(float(levels[i])) for i in order), "min"]

    def spread(mean: str, stderr: str) -> str:
        return f"{_scientific(a[mean], precision)} ± {_scientific(a[stderr], precision)}"

    kl = [spread("kl_mean", "kl_stderr"), "", _scientific(a["kl_max"], precision),
          *(_scientific(a["kl_quantiles"][i], precision) for i in order), _scientific(a["kl_min"], precision)]
    columns = [Column("", names, justify="left", style="bold"), Column("KL (nats)", kl)]
    if "dp_quantiles" in a:
        columns.append(Column("Δp = q[y] - p[y]", [spread("dp_mean", "dp_stderr"), spread("dp_rms", "dp_rms_stderr"),
                                                    _scientific(a["dp_max"], precision),
                                                    *(_scientific(a["dp_quantiles"][i], precision) for i in order),
                                                    _scientific(a["dp_min"], precision)]))
    return columns


def _draw_columns(console: Console, columns: list[Column]) -> None:
    """The statistics table; a row empty in every data column (rms of KL, max of Δp) is left out.

    Too wide for the console, each column is drawn as ``labelled`` lines under its header instead.
    """
    kept = [i for i in range(len(columns[0].cells)) if any(column.cells[i] for column in columns[1:])]
    if sum(column.width + 3 for column in columns) > console.width:  # two spaces before each, one after
        for column in columns[1:]:
            console.print(Text(column.header, style="bold"))
            # A spread stays whole when it fits the line, else its ± error goes under its mean.
            rows = [(columns[0].cells[i], column.cells[i].replace(" ± ", "\0± ").split("\0")) for i in kept
                    if column.cells[i]]
            for line in labelled(rows, console.width):
                console.print(line)
        return
    table = Table(box=None, padding=(0, 1, 0, 2), header_style="bold")
    for column in columns:
        table.add_column(Text(column.header), justify=column.justify, style=column.style, no_wrap=True)
    for i in kept:
        table.add_row(*(column.cells[i] for column in columns))
    console.print(table)


def histogram_bins(kl: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Bin labels and counts: exact zeros, log-spaced bins over the positive finite rows, inf, NaN.

    The edges are 1, 2 and 5 times powers of ten (or whole decades when the rows
    span more than :data:`MAX_BINS` // 3 of them), so every label is exact and
    at most :data:`MAX_BINS` bins cover the rows' range; a bin holds ``[lower, upper)``.
    """
    kl = np.asarray(kl, dtype=np.float64)
    positive = kl[np.isfinite(kl) & (kl > 0)]
    labels, counts = [], []
    if (kl == 0).any():
        labels.append("0")
        counts.append(int((kl == 0).sum()))
    if positive.size:
        low, high = math.floor(math.log10(positive.min())), math.floor(math.log10(positive.max())) + 1
        decades = high - low
        if 3 * decades <= MAX_BINS:
            edges = np.array([m * 10.0 ** e for e in range(low, high) for m in (1, 2, 5)] + [10.0 ** high])
        else:
            step = math.ceil(decades / MAX_BINS)
            edges = 10.0 ** np.arange(low, high + step, step)
        found, _ = np.histogram(positive, bins=edges)
        # np.histogram closes the last bin; the top edge lies above every value, so none sits on it.
        first, last = np.flatnonzero(found)[[0, -1]]
        for i in range(first, last + 1):
            labels.append(f"{edges[i]:.0e}–{edges[i + 1]:.0e}")
            counts.append(int(found[i]))
    for name, mask in (("inf", np.isposinf(kl)), ("nan", np.isnan(kl))):
        if mask.any():
            labels.append(name)
            counts.append(int(mask.sum()))
    return labels, np.array(counts, dtype=np.int64)


def histogram(console: Console, kl: np.ndarray) -> None:
    """Per-row KL in log-spaced bins: range, count and a bar scaled to the fullest bin."""
    labels, counts = histogram_bins(kl)
    if not labels:
        return
    before = [Column("KL per row", labels, justify="left"), Column("rows", [f"{c:,}" for c in counts])]
    width = min(HISTOGRAM_BAR, console.width - table_width(before) - 3)
    columns = before
    if width >= 4:
        peak = max(int(counts.max()), 1)
        # A nonempty bin always shows at least a sliver.
        columns = before + [Column("", [bar(max(c / peak, 1 / (8 * width)) if c else 0.0, width) for c in counts],
                                   justify="left", style="green")]
    draw_table(console, None, columns)


def per_row(console: Console, arrays: dict[str, np.ndarray], names: list[str], precision: int | None,
            what: str = "row") -> None:
    """The per-row (or per-sequence) figures: first and last rows, one column per figure, as many as fit."""
    n = arrays[names[0]].shape[0]
    rows = head_and_tail(n)
    columns = [Column(what, [str(i) for i in rows], style="dim")]
    for name in names:
        values = arrays[name][rows]
        cells = [str(bool(v)) if values.dtype == bool else f"{int(v):,}" if values.dtype.kind in "iu"
                 else _scientific(v, precision) for v in values]
        column = Column(name, cells)
        if table_width(columns + [column]) > console.width:
            break
        columns.append(column)
    draw_table(console, None, columns, (len(rows) // 2 - 1,) if len(rows) < n else ())
    left = [name for name in names if name not in [c.header for c in columns]]
    if len(rows) < n or left:
        shown = f"rows {rows[:len(rows) // 2][-1] + 1} to {rows[len(rows) // 2] - 1} not shown" if len(rows) < n else ""
        hidden = f"too wide to show: {', '.join(left)}" if left else ""
        console.print(Text("; ".join(filter(None, (shown, hidden))) + "; -f npz holds every row", style="dim"))


def compare(result: Result, console: Console, precision: int | None) -> None:
    """The summary a person reads in five seconds, then the histogram of per-row KL."""
    a = {name: np.asarray(value) for name, value in result.arrays.items()}
    lines = [("scored positions", f"{int(a['n_scored']):,}", ""),
             ("top-1 agreement", _percent(float(a["top1_agreement"]), precision),
              f"± {_percent(float(a['top1_agreement_stderr']), precision)}")]
    if "ppl_ratio" in a:
        ppl = number_format(np.array([a["ppl_ref"], a["ppl_cand"], a["ppl_ratio"]]), precision)
        # Six significant digits: a perplexity ratio of 0.9998 must not read as 1.
        ppl = ppl if precision is not None else lambda v: f"{float(v):.6g}"

        def spread(title: str, name: str) -> tuple[str, str, str]:
            return title, ppl(a[name]), f"± {ppl(a[name + '_stderr'])}"

        lines += [spread("perplexity ref", "ppl_ref"), spread("perplexity cand", "ppl_cand"),
                  spread("perplexity ratio", "ppl_ratio"), spread("ln perplexity ratio", "ln_ppl_ratio"),
                  spread("perplexity cand - ref", "ppl_diff"),
                  ("ln ppl correlation", _percent(float(a["ln_ppl_correlation"]), precision), "")]
    lines += [("mean JS", _scientific(a["js_mean"], precision), ""),
              ("mean TV", _scientific(a["tv_mean"], precision), ""),
              ("max |p - q| any class", _scientific(a["max_abs_dp"], precision), "")]
    _figures(console, lines)
    columns = _statistics(a, precision)
    if "dp_quantiles" in a and table_width(columns) - len(columns) - 1 > console.width:
        _draw_columns(console, columns[:2])  # too narrow for both side by side: one under the other
        _draw_columns(console, [columns[0], columns[2]])
    else:
        _draw_columns(console, columns)
    histogram(console, result.display["kl"])
    names = [name for name in ("kl", "js", "tv", "row_max_abs_dp", "top1_same", "nll_ref", "nll_cand", "dp", "scored")
             if name in a]
    if names:
        per_row(console, a, names, precision)
    sequences = [name for name in a if name.startswith("seq_")]
    if sequences:
        per_row(console, a, sequences, precision, "sequence")
