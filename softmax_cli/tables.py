"""Rich tables for people. Imported only when a table is drawn.

Large arrays are elided with a visible "… N more rows/columns" note, never
silently cut.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from .result import Result

MAX_ROWS = 20
BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"


def number(value, precision: int | None) -> str:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    if precision is not None:
        return f"{value:.{precision}f}"
    return f"{value:.4g}"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``fraction`` (0..1) of ``width`` cells, in eighths."""
    if not np.isfinite(fraction):
        return ""
    eighths = int(round(min(max(fraction, 0.0), 1.0) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _row_label(index: tuple[int, ...]) -> str:
    return str(index[0]) if len(index) == 1 else str(index)


def _max_columns(console: Console, label_width: int = 8, cell_width: int = 11) -> int:
    return max(2, (console.width - label_width) // cell_width)


def _more(count: int, what: str) -> str:
    return f"… {count} more {what}{'s' if count != 1 else ''}"


def _fitting_columns(cells: list[list[str]], names: list[str], room: int) -> int:
    """How many leading columns fit in ``room`` characters, each as wide as its widest cell."""
    used = 0
    for j, name in enumerate(names):
        width = max([len(name)] + [len(row[j]) for row in cells]) + 3  # padding and border
        if used + width > room:
            return max(1, j)
        used += width
    return len(names)


def grid(
    name: str,
    array: np.ndarray,
    console: Console,
    precision: int | None,
    column_names: list[str] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    row_names: list[str] | None = None,
    corner: str = "row",
) -> None:
    """An array as rows × last-axis columns (leading axes flattened into labelled rows).

    As many whole columns are shown as fit the console; the rest are counted
    in a "… N more columns" column, never cut.
    """
    extra = extra or {}
    matrix = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array.reshape(1, -1)
    if row_names is not None:
        labels = row_names
    else:
        labels = [_row_label(index) for index in np.ndindex(array.shape[:-1])] if array.ndim > 1 else ["0"]
    n_rows, n_cols = matrix.shape
    shown_rows = min(n_rows, MAX_ROWS)
    names = column_names if column_names is not None else [str(j) for j in range(n_cols)]
    cells = [[number(v, precision) for v in matrix[i]] for i in range(shown_rows)]
    flat_extra = {key: np.asarray(value).reshape(-1) for key, value in extra.items()}
    extra_cells = [[number(value[i], precision) for value in flat_extra.values()] for i in range(shown_rows)]
    label_width = max(len(corner), *(len(labels[i]) for i in range(shown_rows))) + 3
    extra_width = sum(max([len(k)] + [len(row[j]) for row in extra_cells]) + 3 for j, k in enumerate(flat_extra))
    room = console.width - 1 - label_width - extra_width
    shown_cols = _fitting_columns(cells, names, room)
    if shown_cols < n_cols:  # make room for the "… N more columns" note
        shown_cols = _fitting_columns(cells, names, room - len(_more(n_cols, "column")) - 3)
    table = Table(title=name, title_justify="left")
    table.add_column(corner, style="dim", justify="right", no_wrap=True)
    for j in range(shown_cols):
        table.add_column(names[j], justify="right", overflow="fold")
    if shown_cols < n_cols:
        table.add_column(_more(n_cols - shown_cols, "column"), style="dim", no_wrap=True)
    for key in flat_extra:
        table.add_column(key, justify="right", style="cyan", overflow="fold")
    for i in range(shown_rows):
        row = cells[i][:shown_cols] + (["…"] if shown_cols < n_cols else []) + extra_cells[i]
        table.add_row(labels[i], *row)
    console.print(table)
    if n_rows > MAX_ROWS:
        console.print(f"[dim]{_more(n_rows - MAX_ROWS, 'row')} of {n_rows}[/dim]")


def vector(
    name: str, values: np.ndarray, console: Console, precision: int | None, labels: list[str] | None, fractions=None
) -> None:
    """A 1-D array as one line per entry, with bars when ``fractions`` (0..1) are given."""
    table = Table(title=name, title_justify="left")
    table.add_column("class" if labels is not None else "index", style="bold")
    table.add_column(name, justify="right", overflow="fold")
    if fractions is not None:
        table.add_column("", style="green")
    n = values.shape[0]
    for i in range(min(n, MAX_ROWS)):
        cells = [labels[i] if labels is not None else str(i), number(values[i], precision)]
        if fractions is not None:
            cells.append(bar(float(fractions[i])))
        table.add_row(*cells)
    console.print(table)
    if n > MAX_ROWS:
        console.print(f"[dim]{_more(n - MAX_ROWS, 'row')} of {n}[/dim]")


def scalars(items: dict[str, np.ndarray], console: Console, precision: int | None) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in items.items():
        table.add_row(key, number(value, precision))
    console.print(table)


def distribution(result: Result, console: Console, precision: int | None) -> None:
    """Probabilities: one bar per class for a vector, rows × classes for a batch."""
    name, values = result.primary_name, result.primary
    if values.ndim == 1:
        fractions = np.exp(values) if name.startswith("log") else values
        vector(name, values, console, precision, result.classes, fractions.astype(np.float64))
    else:
        grid(name, values, console, precision, result.header, result.display, row_names=result.rows)


def generic(result: Result, console: Console, precision: int | None) -> None:
    """Every array in order: scalars together, vectors and matrices as tables."""
    zero_d = {k: v for k, v in result.arrays.items() if np.ndim(v) == 0}
    for key, value in result.arrays.items():
        if np.ndim(value) == 0:
            continue
        names = result.header if key == result.primary_name else None
        if np.ndim(value) == 1 and names is None:
            vector(key, value, console, precision, None)
        else:
            grid(key, value, console, precision, names, row_names=result.rows if key == result.primary_name else None)
    if zero_d:
        scalars(zero_d, console, precision)


def loss(result: Result, console: Console, precision: int | None) -> None:
    """The reduced loss and accuracy first, then the per-sample losses (elided for large N)."""
    arrays = result.arrays
    summary = {k: v for k, v in arrays.items() if np.ndim(v) == 0}
    scalars(summary, console, precision)
    per_sample = np.asarray(arrays["per_sample"])
    if per_sample.ndim >= 1 and per_sample.size > 1:
        if per_sample.ndim == 1:
            vector("per_sample", per_sample, console, precision, None)
        else:
            grid("per_sample", per_sample, console, precision)


def topk(result: Result, console: Console, precision: int | None) -> None:
    """Ranked classes with their probabilities and the cumulative probability of the k."""
    indices, probs = result.arrays["indices"], result.arrays["probs"]
    names = result.arrays.get("names")
    label = (lambda i, at: str(names[at])) if names is not None else (lambda i, at: str(i))
    cumulative = np.cumsum(np.asarray(probs, dtype=np.float64), axis=-1)
    if indices.ndim == 1:
        table = Table(title="top-k", title_justify="left")
        for column in ("rank", "class", "probability", "cumulative", ""):
            table.add_column(column, justify="left" if column in ("class", "") else "right")
        for rank in range(indices.shape[0]):
            table.add_row(str(rank + 1), label(indices[rank], rank), number(probs[rank], precision),
                          number(cumulative[rank], precision), bar(float(probs[rank])))
        console.print(table)
    else:
        k = indices.shape[-1]
        flat_i = indices.reshape(-1, k)
        flat_p = probs.reshape(-1, k)
        flat_names = names.reshape(-1, k) if names is not None else None
        rows = list(np.ndindex(indices.shape[:-1]))
        table = Table(title="top-k", title_justify="left")
        table.add_column("row", style="dim", justify="right")
        shown = min(k, _max_columns(console, cell_width=16) - 1)
        for rank in range(shown):
            table.add_column(f"#{rank + 1}", justify="right")
        if shown < k:
            table.add_column(_more(k - shown, "column"), style="dim")
        table.add_column(f"top-{k} mass", justify="right", style="cyan")
        for r in range(min(len(rows), MAX_ROWS)):
            cells = []
            for rank in range(shown):
                name = str(flat_names[r, rank]) if flat_names is not None else str(flat_i[r, rank])
                cells.append(f"{name} {number(flat_p[r, rank], precision)}")
            if shown < k:
                cells.append("…")
            table.add_row(result.rows[r] if result.rows else _row_label(rows[r]), *cells,
                          number(cumulative.reshape(-1, k)[r, -1], precision))
        console.print(table)
        if len(rows) > MAX_ROWS:
            console.print(f"[dim]{_more(len(rows) - MAX_ROWS, 'row')} of {len(rows)}[/dim]")
    accuracy = {k: v for k, v in result.arrays.items() if np.ndim(v) == 0}
    if accuracy:
        scalars(accuracy, console, precision)


def reliability(title: str, bins, console: Console, precision: int | None) -> None:
    """A reliability diagram as a table: per bin its confidence, accuracy and count, as bars."""
    table = Table(title=title, title_justify="left")
    for column in ("bin", "count", "confidence", "accuracy", ""):
        table.add_column(column, justify="left" if column in ("bin", "") else "right")
    for lower, upper, conf, acc, count in zip(bins.lower, bins.upper, bins.confidence, bins.accuracy, bins.count):
        if count == 0:
            continue
        table.add_row(f"({lower:.2f}, {upper:.2f}]", str(int(count)), number(conf, precision),
                      number(acc, precision),
                      f"[red]{bar(float(conf), 20)}[/red]\n[blue]{bar(float(acc), 20)}[/blue]")
    console.print(table)
    console.print("[dim]red: confidence, blue: accuracy; empty bins are not shown[/dim]")


def sweep(result: Result, console: Console, precision: int | None) -> None:
    """One line per temperature; then the fit's summary and the reliability diagrams."""
    arrays = result.arrays
    per_t = [name for name in ("entropy", "max_prob", "nll", "accuracy", "ece") if name in arrays]
    table = Table(title="temperature sweep", title_justify="left")
    table.add_column("T", justify="right", style="bold")
    for name in per_t:
        table.add_column(name, justify="right")
    probs = arrays.get("probs")
    classes = result.classes or ([str(j) for j in range(probs.shape[1])] if probs is not None else [])
    shown = min(len(classes), max(0, _max_columns(console) - len(per_t) - 1)) if probs is not None else 0
    for name in classes[:shown]:
        table.add_column(f"p({name})", justify="right", style="green")
    for i, t in enumerate(arrays["temperatures"]):
        cells = [number(arrays[name][i], precision) for name in per_t]
        cells += [number(v, precision) for v in probs[i, :shown]] if probs is not None else []
        table.add_row(number(t, None), *cells)
    console.print(table)
    if probs is not None and shown < len(classes):
        console.print(f"[dim]{_more(len(classes) - shown, 'column')} of probabilities[/dim]")
    fitted = {k: v for k, v in arrays.items() if np.ndim(v) == 0}
    if fitted:
        scalars(fitted, console, precision)
    for title, bins in result.display.items():
        reliability(title, bins, console, precision)


def jacobian(result: Result, console: Console, precision: int | None) -> None:
    """A single vector's matrix with class names on both axes; batches as labelled rows."""
    values = result.primary
    if values.ndim == 2:
        names = result.classes or [str(j) for j in range(values.shape[0])]
        grid("jacobian  d p_i / d z_j", values, console, precision, names, row_names=names, corner="i \\ j")
    else:
        grid("jacobian", values, console, precision, result.header)


MAX_HEATMAPS = 4


def heatmap(title: str, matrix: np.ndarray, console: Console, precision: int | None) -> None:
    """A 2-D matrix of weights in [0, 1], each cell coloured by its value."""
    n_rows, n_cols = matrix.shape
    shown_cols = min(n_cols, _max_columns(console, label_width=6, cell_width=9))
    table = Table(title=title, title_justify="left")
    table.add_column("query", style="dim", justify="right")
    for j in range(shown_cols):
        table.add_column(f"k{j}", justify="right")
    if shown_cols < n_cols:
        table.add_column(_more(n_cols - shown_cols, "column"), style="dim")
    for i in range(min(n_rows, MAX_ROWS)):
        cells = []
        for value in matrix[i, :shown_cols]:
            level = int(round(255 * (1 - min(max(float(value), 0.0), 1.0)))) if np.isfinite(value) else 255
            cells.append(f"[black on rgb({level},{level},255)]{number(value, precision)}[/]")
        table.add_row(str(i), *cells, *(["…"] if shown_cols < n_cols else []))
    console.print(table)
    if n_rows > MAX_ROWS:
        console.print(f"[dim]{_more(n_rows - MAX_ROWS, 'row')} of {n_rows}[/dim]")


def attention(result: Result, console: Console, precision: int | None) -> None:
    """The weights as heat maps (the first few heads), then the output."""
    weights = result.arrays.get("weights")
    if weights is not None:
        matrices = weights.reshape(-1, *weights.shape[-2:])
        heads = list(np.ndindex(weights.shape[:-2]))
        for n in range(min(len(heads), MAX_HEATMAPS)):
            where = f" {_row_label(heads[n])}" if heads[n] else ""
            heatmap(f"weights{where}", matrices[n], console, precision)
        if len(heads) > MAX_HEATMAPS:
            console.print(f"[dim]… {len(heads) - MAX_HEATMAPS} more weight matrices[/dim]")
    grid("output", result.arrays["output"], console, precision)


LAYOUTS = {
    "attention": attention,
    "distribution": distribution,
    "grid": generic,
    "loss": loss,
    "topk": topk,
    "sweep": sweep,
    "jacobian": jacobian,
}


def draw(result: Result, precision: int | None, stream, terminal: bool) -> None:
    console = Console(file=stream, force_terminal=terminal, width=None if terminal else 100, highlight=False)
    if result.title:
        console.print(f"[bold]{result.title}[/bold]")
    LAYOUTS[result.layout](result, console, precision)
