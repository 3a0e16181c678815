"""Rich tables for people, one layout per kind of result. Imported only when a table is drawn.

Every table fits the console: numbers are never cut or wrapped, and what does
not fit (columns, rows, heads) is left out as a block with a visible
"… N more" note, never silently. Cell formats and the fitting live in
``tablecells``.
"""

from __future__ import annotations

import os

import numpy as np
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .comparetable import compare
from .rankedtable import fits_by_index, ranked_columns
from .result import Layout, Result
from .tablecells import (
    BAR_WIDTH,
    MAX_ROWS,
    Column,
    bar,
    candidates,
    draw_table,
    fit,
    fitting,
    head_and_tail,
    labelled,
    line,
    more,
    number_format,
    scalar,
    table_width,
    texts,
)

MAX_HEATMAPS = 4
SWEEP_TABLES = 3
# A bar narrower than this says too little to be worth its column.
MIN_BAR_WIDTH = 6
# Width of a table written to a pipe or file when COLUMNS does not say.
PIPE_WIDTH = 100


def _in_colour(console: Console) -> bool:
    return console.color_system is not None and not console.no_color


def _index_label(index: tuple[int, ...]) -> str:
    return str(index[0]) if len(index) == 1 else ", ".join(map(str, index))


def _rows_note(console: Console, shown: int, total: int, what: str = "row") -> None:
    if shown < total:
        console.print(Text(f"{more(total - shown, what)} of {total}", style="dim"))


def _gap_note(console: Console, rows: np.ndarray, total: int, what: str = "row") -> None:
    """The rows left out between head and tail, counted and named by range."""
    if len(rows) < total:
        first, last = MAX_ROWS // 2, total - MAX_ROWS // 2 - 1
        console.print(Text(f"{more(total - len(rows), what)} ({first} to {last}) of {total}", style="dim"))


def _gap(rows: np.ndarray, total: int) -> tuple[int, ...]:
    """A rule under the head, where rows were left out."""
    return (MAX_ROWS // 2 - 1,) if len(rows) < total else ()


def _single(columns: list[Column]) -> list[list[Column]]:
    return [[column] for column in columns]


def _bars(console: Console, columns: list[Column], fractions, style: str = "green") -> list[Column]:
    """``columns`` and, when there is room for it, a bar column filling the rest of the width."""
    width = min(BAR_WIDTH, console.width - table_width(columns) - 3)
    if width < MIN_BAR_WIDTH:
        return columns
    return columns + [Column("", [bar(float(f), width) for f in fractions], justify="left", style=style)]


def grid(console: Console, title: str, array: np.ndarray, precision: int | None, names: list[str] | None = None,
         what: str = "column", probability: bool = False, extra: dict[str, np.ndarray] | None = None,
         row_labels: list[str] | None = None, corner: str = "row") -> None:
    """An array as rows × last-axis columns (leading axes flattened into labelled rows)."""
    matrix = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array.reshape(1, -1)
    n_rows, n_cols = matrix.shape
    rows = head_and_tail(n_rows)
    if row_labels is None:
        labels = [_index_label(np.unravel_index(i, array.shape[:-1])) for i in rows] if array.ndim > 1 else ["0"]
    else:
        labels = [row_labels[i] for i in rows]
    count = candidates(n_cols, console.width)
    block = matrix[rows, :count]
    extras = {key: value.reshape(-1)[rows] for key, value in (extra or {}).items()}
    # One number format for every value of the array, chosen once from all it can show; a per-row figure
    # beside it (entropy, in nats) is another quantity, with its own.
    format_ = number_format(block, precision, probability)
    data = [Column(names[j] if names is not None else str(j), [format_(v) for v in block[:, j]])
            for j in range(count)]
    after = [Column(key, texts(value, precision), style="cyan") for key, value in extras.items()]
    before = [Column(corner, labels, style="dim")]
    draw_table(console, title, fit(console.width, before, _single(data), after, what, n_cols), _gap(rows, n_rows))
    _gap_note(console, rows, n_rows)


def vector(console: Console, title: str, values: np.ndarray, precision: int | None, labels: list[str] | None = None,
           label_header: str = "index", fractions=None, probability: bool = False) -> None:
    """A 1-D array as one line per entry, with bars when ``fractions`` (0..1) are given."""
    n = values.shape[0]
    rows = head_and_tail(n)
    format_ = number_format(values[rows], precision, probability)
    names = [str(labels[i]) if labels is not None else str(i) for i in rows]
    # Names may wrap (a number never does), so a long class name cannot push the values off the line.
    columns = [Column(label_header, names, justify="left", style="bold", wrap=True),
               Column(title, [format_(v) for v in values[rows]])]
    if fractions is not None:
        columns = _bars(console, columns, np.asarray(fractions)[rows])
    draw_table(console, None, columns, _gap(rows, n))
    _gap_note(console, rows, n)


def scalars(console: Console, items: dict[str, np.ndarray], precision: int | None) -> None:
    """Single figures as ``name  value`` lines, each in its own format."""
    if not items:
        return
    shown = {key: scalar(value, precision) for key, value in items.items()}
    # One space of padding each side of both columns.
    if max(map(cell_len, shown)) + max(map(cell_len, shown.values())) + 4 > console.width:
        for line in labelled([(key, [value]) for key, value in shown.items()], console.width):
            console.print(line)
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right", no_wrap=True)
    for key, value in shown.items():
        table.add_row(key, value)
    console.print(table)


def distribution(result: Result, console: Console, precision: int | None) -> None:
    """Probabilities: one bar per class for a vector, rows × classes for a batch."""
    name, values = result.primary_name, result.primary
    log = name.startswith("log")
    if values.ndim == 1:
        fractions = np.exp(values) if log else values
        vector(console, name, values, precision, result.classes, "class" if result.classes else "index",
               fractions.astype(np.float64), probability=not log)
    else:
        columns = {key: value for key, value in result.display.items() if np.ndim(value)}
        if not _ranked(console, name, values, precision, result.header, columns, result.rows, log):
            grid(console, name, values, precision, result.header, "class", probability=not log, extra=columns,
                 row_labels=result.rows)
        scalars(console, {key: value for key, value in result.display.items() if not np.ndim(value)}, precision)


def _ranked(console: Console, title: str, array: np.ndarray, precision: int | None, names: list[str] | None,
            extra: dict[str, np.ndarray], row_labels: list[str] | None, log: bool) -> bool:
    """A batch whose classes do not all fit as each row's most probable classes (rankedtable); False if they fit."""
    matrix = array.reshape(-1, array.shape[-1])
    n_rows, n_classes = matrix.shape
    rows = head_and_tail(n_rows)
    labels = ([row_labels[i] for i in rows] if row_labels is not None
              else [_index_label(np.unravel_index(i, array.shape[:-1])) for i in rows])
    count = candidates(n_classes, console.width)
    shown = matrix[rows, :count]
    extras = {key: value.reshape(-1)[rows] for key, value in extra.items()}
    format_ = number_format(shown, precision, probability=not log)
    by_index = [Column(names[j] if names is not None else str(j), [format_(v) for v in shown[:, j]])
                for j in range(count)]
    after = [Column(key, texts(value, precision)) for key, value in extras.items()]
    before = [Column("row", labels)]
    if count == n_classes and fits_by_index(console.width, before, by_index, after):
        return False
    draw_table(console, title, ranked_columns(console, matrix[rows], labels, names, extras, precision, log),
          _gap(rows, n_rows))
    _gap_note(console, rows, n_rows)
    return True


def generic(result: Result, console: Console, precision: int | None) -> None:
    """Every array in order: vectors and matrices as tables, then the scalars together."""
    for key, value in result.arrays.items():
        if np.ndim(value) == 0:
            continue
        names = result.header if key == result.primary_name else None
        if np.ndim(value) == 1:
            vector(console, key, value, precision, names, "class" if names else "index")
        else:
            grid(console, key, value, precision, names, "class" if names else "column",
                 row_labels=result.rows if key == result.primary_name else None)
    scalars(console, {k: v for k, v in result.arrays.items() if np.ndim(v) == 0}, precision)


def loss(result: Result, console: Console, precision: int | None) -> None:
    """The reduced loss and accuracy first, then the per-sample losses (elided for large N)."""
    arrays = result.arrays
    scalars(console, {k: v for k, v in arrays.items() if np.ndim(v) == 0}, precision)
    name = "per_sample" if "per_sample" in arrays else "loss"  # --reduction none: the loss is per sample
    per_sample = np.asarray(arrays[name])
    if per_sample.ndim == 1 and per_sample.size > 1:
        vector(console, name, per_sample, precision, label_header="sample")
    elif per_sample.ndim > 1:
        grid(console, name, per_sample, precision)
    for figure in ("seq_nll", "seq_perplexity"):  # --per-sequence
        if figure in arrays:
            vector(console, figure, np.asarray(arrays[figure]), precision, label_header="sequence")


def topk(result: Result, console: Console, precision: int | None) -> None:
    """Ranked classes with their probabilities; class names and probabilities in separate columns."""
    indices, probs = result.arrays["indices"], result.arrays["probs"]
    names = result.arrays.get("names")
    labels = np.asarray(names if names is not None else indices).astype(str)
    k = indices.shape[-1]
    cumulative = np.cumsum(np.asarray(probs, dtype=np.float64), axis=-1)
    if indices.ndim == 1:
        shown = min(k, MAX_ROWS)
        format_ = number_format(probs[:shown], precision, probability=True)
        # A running sum reaches 1 only up to rounding: it must not ask for sixteen decimals to tell 1 - 1e-16 from 1.
        format_sum = number_format(cumulative[:shown], precision)
        columns = [Column("#", [str(r + 1) for r in range(shown)]),
                   Column("class", list(labels[:shown]), justify="left", wrap=True),
                   Column("p", [format_(p) for p in probs[:shown]]),
                   Column("sum", [format_sum(c) for c in cumulative[:shown]])]
        draw_table(console, f"top-{k}", _bars(console, columns, probs[:shown]))
        _rows_note(console, shown, k, "rank")
    else:
        flat_labels, flat_p = labels.reshape(-1, k), probs.reshape(-1, k)
        mass = cumulative.reshape(-1, k)[:, -1]
        n_rows = flat_p.shape[0]
        shown = min(n_rows, MAX_ROWS)
        ranks = candidates(k, console.width // 2)
        format_sum = number_format(mass[:shown], precision)
        groups = [[Column(f"#{r + 1}", list(flat_labels[:shown, r]), justify="left"),
                   Column(f"p#{r + 1}", texts(flat_p[:shown, r], precision, probability=True))] for r in range(ranks)]
        row_labels = result.rows or [_index_label(i) for i in np.ndindex(indices.shape[:-1])]
        before = [Column("row", list(row_labels[:shown]), style="dim")]
        after = [Column("sum", [format_sum(m) for m in mass[:shown]], style="cyan")]
        # Too narrow for one rank beside the sum, the table turns to a line per rank rather than drop the sum.
        columns = fit(console.width, before, groups, after, "rank", k, give_way=False)
        if any(column.header == "#1" for column in columns):
            draw_table(console, f"top-{k}", columns)
            _rows_note(console, shown, n_rows)
        else:  # not one rank fits beside the row and the sum: a line per row and rank instead
            _topk_lines(console, k, flat_labels, flat_p, cumulative.reshape(-1, k), before[0].cells, precision)
    renamed = {"top1_accuracy": "top-1 accuracy", "topk_accuracy": f"top-{k} accuracy"}
    scalars(console, {renamed.get(key, key): v for key, v in result.arrays.items() if np.ndim(v) == 0}, precision)


def _topk_lines(console: Console, k: int, labels: np.ndarray, probs: np.ndarray, cumulative: np.ndarray,
                row_labels: list[str], precision: int | None) -> None:
    n_rows = probs.shape[0]
    ranks = min(k, MAX_ROWS)
    shown = min(n_rows, max(1, MAX_ROWS // ranks))
    format_ = number_format(probs[:shown, :ranks], precision, probability=True)
    format_sum = number_format(cumulative[:shown, :ranks], precision)
    lines = [(r, rank) for r in range(shown) for rank in range(ranks)]
    columns = [Column("row", [row_labels[r] if rank == 0 else "" for r, rank in lines], style="dim"),
               Column("#", [str(rank + 1) for _, rank in lines]),
               Column("class", [str(labels[r, rank]) for r, rank in lines], justify="left", wrap=True),
               Column("p", [format_(probs[r, rank]) for r, rank in lines])]
    # The running sum is the first thing to go: it is the p above it added up.
    with_sum = columns + [Column("sum", [format_sum(cumulative[r, rank]) for r, rank in lines], style="cyan")]
    summed = table_width(with_sum) <= console.width
    draw_table(console, f"top-{k}", with_sum if summed else columns,
               sections_after=tuple(ranks * (r + 1) - 1 for r in range(shown - 1)))
    if ranks < k:
        console.print(Text(f"{more(k - ranks, 'rank')} of each row", style="dim"))
    if not summed:
        console.print(Text(f"{more(1, 'column')} (sum)", style="dim"))
    _rows_note(console, shown, n_rows)


def reliability(console: Console, title: str, bins, precision: int | None) -> None:
    """A reliability diagram: per bin its count, and confidence over accuracy, each as a number and a bar.

    The two series differ in glyph (█ and ━), so they stay apart without colour;
    the header is the legend and names no colour.
    """
    kept = [i for i, count in enumerate(bins.count) if count > 0]
    conf, acc = np.asarray(bins.confidence)[kept], np.asarray(bins.accuracy)[kept]
    format_ = number_format(np.concatenate([conf, acc]), precision, probability=True)
    conf_text, acc_text = [format_(v) for v in conf], [format_(v) for v in acc]
    number_width = max(map(len, conf_text + acc_text), default=1)
    before = [Column("bin", [f"{bins.lower[i]:.2f}–{bins.upper[i]:.2f}" for i in kept], justify="left"),
              Column("count", [str(int(bins.count[i])) for i in kept])]
    legend = "█ confidence\n━ accuracy"
    room = console.width - table_width(before) - 3 - number_width - 1
    width = min(20, max(room, len("confidence") + 2 - number_width - 1, 0))
    if width > room:  # no room for the bars beside their numbers (nor for the legend): the numbers alone
        draw_table(console, title, before + [Column("confidence", conf_text), Column("accuracy", acc_text)])
        _empty_bins_note(console, bins, kept)
        return
    colour = _in_colour(console)
    cells = []
    for c, a, c_text, a_text in zip(conf, acc, conf_text, acc_text):
        cell = Text(f"{c_text:>{number_width}} ")
        cell.append(bar(float(c), width), style="red" if colour else None)
        cell.append(f"\n{a_text:>{number_width}} ")
        cell.append(line(float(a), width), style="blue" if colour else None)
        cells.append(cell)
    header = Text(legend)
    if colour:
        header.stylize("red", 0, 1)
        header.stylize("blue", legend.index("━"), legend.index("━") + 1)
    console.print(Text(title, style="bold"))
    table = Table()
    for column in before:
        table.add_column(column.header, justify=column.justify, no_wrap=True)
    table.add_column(header, justify="left", no_wrap=True)
    for i, cell in enumerate(cells):
        table.add_row(before[0].cells[i], before[1].cells[i], cell)
    console.print(table)
    _empty_bins_note(console, bins, kept)


def _empty_bins_note(console: Console, bins, kept: list[int]) -> None:
    if len(kept) < len(bins.count):
        console.print(Text(f"{len(bins.count) - len(kept)} empty bins of {len(bins.count)} not shown", style="dim"))


def sweep(result: Result, console: Console, precision: int | None) -> None:
    """One line per temperature; then the fit's summary and the reliability diagrams."""
    arrays = result.arrays
    temperatures = np.asarray(arrays["temperatures"])
    # What the labels tell (nll, accuracy, ece) first: it is what a sweep with labels is run for.
    per_t = [name for name in ("nll", "accuracy", "ece", "ece_l2", "mce", "classwise_ece", "brier", "entropy",
                               "max_prob") if name in arrays]
    probabilities = {"max_prob", "accuracy", "ece", "ece_l2", "mce", "classwise_ece"}
    n = temperatures.shape[0]
    shown = min(n, MAX_ROWS)
    metrics = []
    for name in per_t:
        format_ = number_format(arrays[name][:shown], precision, probability=name in probabilities)
        metrics.append(Column(name, [format_(v) for v in arrays[name][:shown]]))
    probs = arrays.get("probs")
    classes = []
    n_classes = 0
    if probs is not None:
        n_classes = probs.shape[1]
        count = candidates(n_classes, console.width)
        names = result.classes or [str(j) for j in range(n_classes)]
        block = probs[:shown, :count]
        classes = [Column(f"p({names[j]})", texts(block[:, j], precision, probability=True), style="green")
                   for j in range(count)]
    format_t = number_format(temperatures[:shown], precision)
    before = [Column("T", [format_t(t) for t in temperatures[:shown]], style="bold")]
    # A sweep has few rows: columns that do not fit go on in a table below, up to SWEEP_TABLES of them.
    columns, total, done = metrics + classes, len(metrics) + n_classes, 0
    for part in range(SWEEP_TABLES):
        title = "temperature sweep" if part == 0 else None
        rest = _single(columns[done:])
        take = max(1, fitting(console.width, before, rest))
        if done + take >= total or part == SWEEP_TABLES - 1:
            def what(count, done=done):
                return "class" if done + count >= len(metrics) else "column"

            draw_table(console, title, fit(console.width, before, rest, [], what, total - done))
            break
        draw_table(console, title, before + columns[done:done + take])
        done += take
    _rows_note(console, shown, n, "temperature")
    scalars(console, {k: v for k, v in arrays.items() if np.ndim(v) == 0}, precision)
    for title, bins in result.display.items():
        reliability(console, title, bins, precision)


def jacobian(result: Result, console: Console, precision: int | None) -> None:
    """The matrix of each row: outputs i down, logits j across, class names on both axes when known."""
    values = result.primary
    n_classes = values.shape[-1]
    names = result.classes or [str(j) for j in range(n_classes)]
    title = "jacobian (i = output, j = logit)"
    if values.ndim == 2:
        grid(console, title, values, precision, names, "class", row_labels=names, corner="i \\ j")
        return
    rows = list(np.ndindex(values.shape[:-2]))
    per_row = max(1, MAX_ROWS // n_classes)
    shown_rows = min(len(rows), per_row)
    shown_i = min(n_classes, MAX_ROWS)
    matrix = values.reshape(len(rows), n_classes, n_classes)[:shown_rows, :shown_i].reshape(-1, n_classes)
    count = candidates(n_classes, console.width)
    data = [Column(names[j], texts(matrix[:, j], precision)) for j in range(count)]
    row_cells = [_index_label(rows[r]) if i == 0 else "" for r in range(shown_rows) for i in range(shown_i)]
    before = [Column("row", row_cells, style="dim"), Column("i", [names[i] for _ in range(shown_rows)
                                                                  for i in range(shown_i)], justify="left")]
    columns = fit(console.width, before, _single(data), [], "class", n_classes)
    draw_table(console, title, columns, sections_after=tuple(shown_i * (r + 1) - 1 for r in range(shown_rows - 1)))
    if shown_i < n_classes:
        console.print(Text(f"{more(n_classes - shown_i, 'output')} i of each row", style="dim"))
    _rows_note(console, shown_rows, len(rows))


def heatmap(console: Console, title: str, matrix: np.ndarray, precision: int | None) -> None:
    """A 2-D matrix of weights in [0, 1], each cell shaded by its value where colour is shown."""
    n_rows, n_cols = matrix.shape
    rows = head_and_tail(n_rows)
    count = candidates(n_cols, console.width)
    block = matrix[rows, :count]
    def shaded(values) -> list[Text]:
        levels = [int(round(255 * (1 - min(max(float(v), 0.0), 1.0)))) if np.isfinite(v) else 255 for v in values]
        return [Text(text, style=f"black on rgb({level},{level},255)")
                for text, level in zip(texts(values, precision, probability=True), levels)]

    data = [Column(f"k{j}", shaded(block[:, j])) for j in range(count)]
    before = [Column("query", [str(i) for i in rows], style="dim")]
    draw_table(console, title, fit(console.width, before, _single(data), [], "key", n_cols), _gap(rows, n_rows))
    _gap_note(console, rows, n_rows, "query")


def attention(result: Result, console: Console, precision: int | None) -> None:
    """The weights as heat maps (the first few heads), then the output."""
    weights = result.arrays.get("weights")
    if weights is not None:
        matrices = weights.reshape(-1, *weights.shape[-2:])
        heads = list(np.ndindex(weights.shape[:-2]))
        for n in range(min(len(heads), MAX_HEATMAPS)):
            where = f" {_index_label(heads[n])}" if heads[n] else ""
            heatmap(console, f"weights{where}", matrices[n], precision)
        if len(heads) > MAX_HEATMAPS:
            console.print(Text(f"{more(len(heads) - MAX_HEATMAPS, 'weight matrix')} of {len(heads)}", style="dim"))
    grid(console, "output", result.arrays["output"], precision)


LAYOUTS = {
    Layout.attention: attention,
    Layout.compare: compare,
    Layout.distribution: distribution,
    Layout.grid: generic,
    Layout.loss: loss,
    Layout.topk: topk,
    Layout.sweep: sweep,
    Layout.jacobian: jacobian,
}


def console_width(terminal: bool) -> int | None:
    """COLUMNS when set, else the terminal's width (Rich finds it), else PIPE_WIDTH for a pipe or file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if terminal else PIPE_WIDTH


def show(result: Result, console: Console, precision: int | None) -> None:
    """The result's tables on ``console``, fitted to its width."""
    if result.title:
        console.print(Text(result.title, style="bold"))
    LAYOUTS[result.layout](result, console, precision)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away: Rich would exit 1, a failed gate's status; the app ends quietly with 0 instead."""
        self.quiet = True
        raise BrokenPipeError


def draw(result: Result, precision: int | None, stream, terminal: bool) -> None:
    show(result, _Console(file=stream, force_terminal=terminal, width=console_width(terminal), highlight=False),
         precision)
