"""Tables read as a person reads them: at 40, 80 and 200 columns, every layout, no number cut or wrapped.

Each layout is rendered to a string by a fixed-width Rich console and parsed
back: every line fits, every number in a cell parses and equals the value it
stands for at the precision shown, every elided block is counted right, and a
table with more data than fits uses the width. The values are computed here
with plain NumPy, never by ``softmax_cli.core``.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from conftest import reference_log_softmax, reference_softmax, run
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from softmax_cli import tables
from softmax_cli.core import ReliabilityBins
from softmax_cli.progress import count_text, eta_text, figures, rate_text
from softmax_cli.result import Result
from softmax_cli.tablecells import number_format

WIDTHS = (40, 80, 200)
NUMBER = re.compile(r"-?(\d+(\.\d+)?(e[+-]\d+)?|inf|nan)")


def render(result: Result, width: int, precision: int | None = None, colour: bool = False, **console) -> str:
    stream = io.StringIO()
    target = Console(width=width, file=stream, force_terminal=colour, color_system="truecolor" if colour else None,
                     highlight=False, **console)
    tables.show(result, target, precision)
    return stream.getvalue()


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]]


def parse(text: str) -> list[dict]:
    """Every boxed table: its width, its header (one string per column) and its body lines (cells)."""
    found, current = [], None
    for line in text.splitlines():
        if line.startswith("┏"):
            current = {"width": cell_len(line), "header_lines": [], "rows": []}
            found.append(current)
        elif current is not None and line.startswith("┃"):
            current["header_lines"].append(cells(line))
        elif current is not None and line.startswith("│"):
            current["rows"].append(cells(line))
        elif current is not None and line.startswith("└"):
            current["header"] = [" ".join(part for part in parts if part) for parts in zip(*current["header_lines"])]
            current = None
    return found


def tolerance(token: str) -> float:
    """Half a unit of the last digit shown."""
    mantissa, _, exponent = token.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals) * (1 + 1e-9) + 4 * np.spacing(abs(float(token)))


def assert_shows(token: str, value) -> None:
    assert NUMBER.fullmatch(token), f"not a whole number: {token!r}"
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        assert float(token) == value or (math.isnan(value) and token == "nan"), (token, value)
    else:
        assert abs(float(token) - value) <= tolerance(token), (token, value)


def assert_fits(text: str, width: int) -> None:
    for line in text.splitlines():
        assert cell_len(line) <= width, f"{cell_len(line)} > {width}: {line!r}"
        assert not re.search(r"\d…", line), f"a number cut short: {line!r}"


def hidden(header: list[str], what: str) -> int:
    """N of the "… N more WHAT" column, 0 when nothing is elided."""
    notes = [name for name in header if name.startswith("…")]
    assert len(notes) <= 1
    if not notes:
        return 0
    match = re.fullmatch(rf"… (\d+) more {what}( and .+)?(, Σp)?", notes[0])  # Σp: what they hold together
    assert match, (notes[0], what)
    return int(match.group(1))


def assert_uses_width(table: dict, width: int, data_columns: list[int]) -> None:
    """With columns left out, not one more of them would have fitted."""
    widest = max(max(cell_len(table["header"][j]), *(cell_len(row[j]) for row in table["rows"])) for j in data_columns)
    assert table["width"] > width - (widest + 3), (table["width"], width, widest)


def check_matrix(table: dict, matrix: np.ndarray, row_labels: list[str], names: list[str], what: str, width: int,
                 label_columns: int = 1, extra: dict[str, np.ndarray] | None = None) -> None:
    """A rows × columns table: leading columns shown as a block, values in place, the elision counted."""
    extra = extra or {}
    header = table["header"]
    data = [j for j, name in enumerate(header[label_columns:], label_columns)
            if not name.startswith("…") and name not in extra]
    assert [header[j] for j in data] == names[: len(data)], "the shown columns are the leading block"
    assert len(data) + hidden(header, what) == len(names)
    if hidden(header, what) and data:
        assert_uses_width(table, width, data)
    for name in extra:
        assert name in header or name in next(n for n in header if n.startswith("…")), f"{name} dropped silently"
    for cells_ in table["rows"]:
        r = row_labels.index(cells_[0] if label_columns == 1 else cells_[label_columns - 1])
        for j in data:
            assert_shows(cells_[j], matrix[r, names.index(header[j])])
        for j, name in enumerate(header):
            if name in extra:
                assert_shows(cells_[j], extra[name][r])
            elif name.startswith("…"):
                assert cells_[j] == "…"


def check_rows_note(text: str, shown: int, total: int, what: str = "rows", gap: tuple[int, int] | None = None) -> None:
    """The note under a table: how many rows are left out (and which, between head and tail)."""
    if shown < total:
        where = f" ({gap[0]} to {gap[1]})" if gap else ""
        assert f"… {total - shown} more {what}{where} of {total}" in text
    else:
        assert f"more {what}" not in text


def scalar_lines(text: str) -> dict[str, str]:
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] not in "┏┃┡│└├" + "…"]
    return {line.rsplit(None, 1)[0]: line.rsplit(None, 1)[1] for line in lines if " " in line}


# ---------------------------------------------------------------- results as the commands build them

RNG = np.random.default_rng(12)
BATCH_LOGITS = RNG.normal(size=(25, 10)) * 3
BATCH_LOGITS[0] = [30, 0, -5, 1, 2, 3, 4, 5, 6, 7]  # 1e-13 next to 0.9999...
NAMES = [f"class{j}" for j in range(10)]


def entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)


@pytest.mark.parametrize("width", WIDTHS)
def test_distribution_vector(width):
    logits = np.array([12.0, -4.0, 0.5, 3.0] + [0.1 * j for j in range(21)])
    probs = reference_softmax(logits)
    classes = [f"n{j}" for j in range(len(logits))]
    text = render(Result({"probs": probs}, classes=classes, layout="distribution"), width)
    assert_fits(text, width)
    [table] = parse(text)
    assert table["header"][:2] == ["class", "probs"]
    for cells_ in table["rows"]:
        assert_shows(cells_[1], probs[classes.index(cells_[0])])
    assert [row[0] for row in table["rows"]] == classes[:10] + classes[-10:]  # the first and the last rows
    check_rows_note(text, 20, 25, gap=(10, 14))
    assert "█" in text  # the bar has room at every width tested


@pytest.mark.parametrize("width", WIDTHS)
def test_distribution_batch_with_entropy(width):
    probs = reference_softmax(BATCH_LOGITS)
    result = Result({"probs": probs}, classes=NAMES, header=NAMES, layout="distribution",
                    display={"entropy": entropy(probs)})
    text = render(result, width)
    assert_fits(text, width)
    [table] = parse(text)
    assert [int(row[0]) for row in table["rows"]] == [*range(10), *range(15, 25)]
    check_rows_note(text, 20, 25, gap=(10, 14))
    if width == 200:
        check_matrix(table, probs, [str(i) for i in range(25)], NAMES, "classes", width,
                     extra={"entropy": entropy(probs)})
        assert hidden(table["header"], "classes") == 0
    elif width == 40:  # not one (class, 0.9999999998-wide probability) pair fits beside the row and the note
        assert table["header"] == ["row", "… 10 more classes", "entropy"]
    else:  # not every class fits: each row's most probable classes (tests/cli/test_top_classes_table.py)
        assert table["header"][1] == "#1"
        assert [row[1] for row in table["rows"][:10]] == [NAMES[j] for j in probs[:10].argmax(axis=1)]
        assert hidden(table["header"], "classes") > 0


@pytest.mark.parametrize("width", WIDTHS)
def test_log_probabilities_batch(width):
    values = reference_log_softmax(BATCH_LOGITS[:5])
    text = render(Result({"log_probs": values}, layout="distribution"), width)
    assert_fits(text, width)
    [table] = parse(text)
    if width == 200:
        check_matrix(table, values, [str(i) for i in range(5)], [str(j) for j in range(10)], "classes", width)
    else:  # not every class fits: each row's most probable classes, by log-probability
        assert table["header"][1:3] == ["#1", "log p#1"]
        assert [int(row[1]) for row in table["rows"]] == list(values.argmax(axis=1))


def test_probabilities_near_zero_and_one_stay_apart():
    probs = reference_softmax(np.array([0.0, 16.0, -1.0]))  # about 1e-07, 0.9999998, 4e-08
    text = render(Result({"probs": probs}, layout="distribution"), 80)
    [table] = parse(text)
    shown = [row[1] for row in table["rows"]]
    assert shown[1].startswith("0.99999") and float(shown[1]) < 1
    assert "e-07" in shown[0] and "e-08" in shown[2]
    decimals = {len(cell.split(".")[1]) for cell in shown if "e" not in cell}
    assert len(decimals) == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_loss(width):
    per_sample = np.array([0.48, 5.556, 6.4112, 3.084, 0.0004, 12.5])
    arrays = {"loss": np.float64(per_sample.mean()), "per_sample": per_sample, "accuracy": np.float64(0.25)}
    text = render(Result(arrays, column=True, layout="loss"), width)
    assert_fits(text, width)
    figures_ = scalar_lines(text)
    assert_shows(figures_["loss"], per_sample.mean())
    assert_shows(figures_["accuracy"], 0.25)
    [table] = parse(text)
    assert table["header"] == ["sample", "per_sample"]
    for cells_ in table["rows"]:
        assert_shows(cells_[1], per_sample[int(cells_[0])])


def topk_reference(logits: np.ndarray, k: int):
    probs = reference_softmax(logits)
    order = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(probs, order, -1)


@pytest.mark.parametrize("width", WIDTHS)
def test_topk_vector_with_numeric_class_names(width):
    indices, probs = topk_reference(np.array([1.0, 3.0, 2.0, -1.0]), 3)
    names = np.array(["10", "20", "30", "40"])[indices]
    text = render(Result({"indices": indices, "probs": probs, "names": names}, classes=["10", "20", "30", "40"],
                         layout="topk"), width)
    assert_fits(text, width)
    [table] = parse(text)
    assert table["header"][:4] == ["#", "class", "p", "sum"]
    for rank, cells_ in enumerate(table["rows"]):
        assert cells_[1] == names[rank]  # the name alone in its column, never "20 0.6652"
        assert_shows(cells_[2], probs[rank])
        assert_shows(cells_[3], probs[: rank + 1].sum())


@pytest.mark.parametrize("width", WIDTHS)
def test_topk_batch_pairs_names_and_probabilities(width):
    logits = BATCH_LOGITS[:6]
    indices, probs = topk_reference(logits, 5)
    names = np.array(NAMES)[indices]
    arrays = {"indices": indices, "probs": probs, "top1_accuracy": np.float64(0.5),
              "topk_accuracy": np.float64(5 / 6), "names": names}
    text = render(Result(arrays, classes=NAMES, layout="topk"), width)
    assert_fits(text, width)
    [table] = parse(text)
    header = table["header"]
    if header[:2] == ["row", "#"]:  # too narrow for one rank beside the row: a line per row and rank
        assert width == 40
        lines = table["rows"]
        assert len(lines) == 4 * 5 and [cells_[0] for cells_ in lines[::5]] == ["0", "1", "2", "3"]
        for n, cells_ in enumerate(lines):
            r, rank = divmod(n, 5)
            assert int(cells_[1]) == rank + 1 and cells_[2] == names[r, rank]
            assert_shows(cells_[3], probs[r, rank])
            if len(cells_) == 5:
                assert_shows(cells_[4], probs[r, : rank + 1].sum())
        # The running sum gives way first, and says so.
        assert ("sum" in header) != ("… 1 more column (sum)" in text)
        check_rows_note(text, 4, 6)
    else:
        ranks = [j for j, name in enumerate(header) if re.fullmatch(r"#\d+", name)]
        assert len(ranks) + hidden(header, "ranks") == 5
        assert len(ranks) >= 1
        for r, cells_ in enumerate(table["rows"]):
            assert int(cells_[0]) == r
            for rank, j in enumerate(ranks):
                assert header[j] == f"#{rank + 1}" and header[j + 1] == f"p#{rank + 1}"
                assert cells_[j] == names[r, rank]
                assert_shows(cells_[j + 1], probs[r, rank])
            assert_shows(cells_[header.index("sum")], probs[r].sum())
    figures_ = scalar_lines(text)
    assert_shows(figures_["top-1 accuracy"], 0.5)
    assert_shows(figures_["top-5 accuracy"], 5 / 6)


def sweep_arrays(logits: np.ndarray, temperatures: np.ndarray) -> dict:
    probs = np.stack([reference_softmax(logits, temperature=t) for t in temperatures])
    return {"temperatures": temperatures, "probs": probs, "entropy": entropy(probs), "max_prob": probs.max(-1)}


@pytest.mark.parametrize("width", WIDTHS)
def test_sweep_of_one_vector(width):
    temperatures = np.geomspace(0.1, 10, 9)
    arrays = sweep_arrays(np.array([3.0, 1.0, 0.2, -2.0, 0.0, 1.5, 2.5]), temperatures)
    classes = ["cat", "dog", "bird", "fish", "frog", "newt", "yak"]
    text = render(Result(arrays, classes=classes, column=True, layout="sweep"), width)
    assert_fits(text, width)
    found = parse(text)
    columns = {name: np.asarray(arrays[name]) for name in ("entropy", "max_prob")}
    columns |= {f"p({name})": arrays["probs"][:, j] for j, name in enumerate(classes)}
    shown_classes = 0
    for table in found:
        assert table["header"][0] == "T"
        for i, cells_ in enumerate(table["rows"]):
            assert_shows(cells_[0], temperatures[i])
            for name, cell in zip(table["header"][1:], cells_[1:]):
                if not name.startswith("…"):
                    assert_shows(cell, columns[name][i])
        shown_classes += sum(name.startswith("p(") for name in table["header"])
        shown_classes += hidden(table["header"], "classes") if "more classes" in " ".join(table["header"]) else 0
    assert shown_classes == len(classes)


def reliability_of(confidence: np.ndarray, correct: np.ndarray, bins: int) -> ReliabilityBins:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(which, confidence, bins) / count
        acc = np.bincount(which, correct, bins) / count
    return ReliabilityBins(edges[:-1], edges[1:], conf, acc, count)


@pytest.mark.parametrize("width", WIDTHS)
def test_sweep_with_labels_and_fit(width):
    logits = BATCH_LOGITS
    labels = np.argmax(logits + RNG.normal(size=logits.shape) * 2, axis=-1)
    temperatures = np.array([0.5, 1.0, 2.0])
    arrays = {"temperatures": temperatures}
    probs = np.stack([reference_softmax(logits, temperature=t) for t in temperatures])
    arrays["entropy"] = entropy(probs).mean(-1)
    arrays["max_prob"] = probs.max(-1).mean(-1)
    arrays["nll"] = -np.log(probs[:, np.arange(25), labels]).mean(-1)
    arrays["accuracy"] = (probs.argmax(-1) == labels).mean(-1)
    arrays["ece"] = np.array([0.0312, 0.00021, 0.2])
    arrays |= {"fitted_temperature": np.float64(1.2345), "nll_before": np.float64(1.5), "nll_after": np.float64(1.25)}
    p1 = reference_softmax(logits)
    display = {"reliability before (T = 1)": reliability_of(p1.max(-1), p1.argmax(-1) == labels, 10)}
    text = render(Result(arrays, column=True, layout="sweep", display=display), width)
    assert_fits(text, width)
    *parts, diagram = parse(text)
    # What the labels tell first; columns that do not fit continue in a table below, none left out.
    names = ["nll", "accuracy", "ece", "entropy", "max_prob"]
    shown = [name for part in parts for name in part["header"][1:]]
    assert shown == names
    assert len(parts) == (1 if width >= 80 else 2)
    for part in parts:
        for i, cells_ in enumerate(part["rows"]):
            assert_shows(cells_[0], temperatures[i])
            for name, cell in zip(part["header"][1:], cells_[1:]):
                assert_shows(cell, arrays[name][i])
    assert_shows(scalar_lines(text)["fitted_temperature"], 1.2345)
    # The diagram: per bin a confidence line and an accuracy line, told apart by glyph, not colour.
    bins = display["reliability before (T = 1)"]
    kept = np.flatnonzero(bins.count)
    assert diagram["header"] == ["bin", "count", "█ confidence ━ accuracy"]
    assert len(diagram["rows"]) == 2 * len(kept)
    for n, b in enumerate(kept):
        first, second = diagram["rows"][2 * n], diagram["rows"][2 * n + 1]
        assert first[0] == f"{bins.lower[b]:.2f}–{bins.upper[b]:.2f}" and int(first[1]) == bins.count[b]
        assert_shows(first[2].split()[0], bins.confidence[b])
        assert_shows(second[2].split()[0], bins.accuracy[b])
        assert set(first[2].split(None, 1)[1:] and first[2].split(None, 1)[1]) <= set("█▏▎▍▌▋▊▉")
        assert set("".join(second[2].split()[1:])) <= set("━╸")
    assert "red" not in text and "blue" not in text
    if len(kept) < 10:
        assert f"{10 - len(kept)} empty bins of 10 not shown" in text


def jacobian_of(p: np.ndarray) -> np.ndarray:
    return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]


@pytest.mark.parametrize("width", WIDTHS)
def test_jacobian_of_one_vector(width):
    classes = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    values = jacobian_of(reference_softmax(np.linspace(-2, 2, 9)))
    text = render(Result({"jacobian": values}, classes=classes, header=classes, layout="jacobian"), width)
    assert_fits(text, width)
    [table] = parse(text)
    assert table["header"][0] == "i \\ j"
    check_matrix(table, values, classes, classes, "classes", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_jacobian_of_a_batch_labels_row_and_i(width):
    values = jacobian_of(reference_softmax(BATCH_LOGITS[:7, :4]))
    text = render(Result({"jacobian": values}, layout="jacobian"), width)
    assert_fits(text, width)
    [table] = parse(text)
    assert table["header"][:2] == ["row", "i"]
    names = [str(j) for j in range(4)]
    data = [j for j, name in enumerate(table["header"][2:], 2) if not name.startswith("…")]
    assert len(data) + hidden(table["header"], "classes") == 4
    row = None
    lines = table["rows"]
    for cells_ in lines:
        row = int(cells_[0]) if cells_[0] else row
        for j in data:
            assert_shows(cells_[j], values[row, int(cells_[1]), names.index(table["header"][j])])
    assert len(lines) == 20  # five whole rows of four i each
    assert [cells_[0] for cells_ in lines[::4]] == ["0", "1", "2", "3", "4"]
    check_rows_note(text, 5, 7)


@pytest.mark.parametrize("width", WIDTHS)
def test_attention_with_weights(width):
    scores = RNG.normal(size=(2, 5, 12))
    weights = reference_softmax(scores)
    output = weights @ RNG.normal(size=(2, 12, 3))
    text = render(Result({"output": output, "weights": weights}, layout="attention"), width)
    assert_fits(text, width)
    heads = parse(text)
    assert len(heads) == 3
    for head in range(2):
        check_matrix(heads[head], weights[head], [str(i) for i in range(5)], [f"k{j}" for j in range(12)], "keys",
                     width)
    assert "weights 0" in text and "weights 1" in text
    check_matrix(heads[2], output.reshape(-1, 3), [f"{h}, {i}" for h in range(2) for i in range(5)],
                 ["0", "1", "2"], "columns", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_generic_grid_and_vector(width):
    grad = reference_softmax(BATCH_LOGITS[:3, :9]) - np.eye(9)[[1, 4, 8]]
    text = render(Result({"grad": grad}), width)
    assert_fits(text, width)
    [table] = parse(text)
    check_matrix(table, grad, ["0", "1", "2"], [str(j) for j in range(9)], "columns", width)
    vector = render(Result({"grad": grad[0]}, classes=NAMES[:9], header=NAMES[:9]), width)
    assert_fits(vector, width)
    [table] = parse(vector)
    for cells_ in table["rows"]:
        assert_shows(cells_[1], grad[0, NAMES.index(cells_[0])])


def test_a_near_certain_class_shows_whole_and_the_entropy_gives_way_by_name():
    probs = reference_softmax(BATCH_LOGITS[:4])  # row 0: 0.9999999998 in class 0
    ent = entropy(probs)
    text = render(Result({"probs": probs}, layout="distribution", display={"entropy": ent}), 40)
    assert_fits(text, 40)
    [table] = parse(text)
    assert table["header"][:3] == ["row", "#1", "p#1"] and table["rows"][0][1:3] == ["0", "0.9999999998"]
    assert table["header"][-1] == "… 9 more classes and entropy"
    wide = parse(render(Result({"probs": probs}, layout="distribution"), 200))[0]
    assert len(wide["rows"][0][1]) == 12
    # One number format for the table: every fixed-notation cell has the decimals 0.9999999998 needs.
    assert all(len(cell) == 12 for row in wide["rows"] for cell in row[1:] if "e" not in cell)


def test_headers_are_never_split_mid_word():
    names = ["golden_retriever", "cat", "dog", "tasmanian_devil"]
    probs = reference_softmax(BATCH_LOGITS[:3, :4])
    text = render(Result({"probs": probs}, classes=names, header=names, layout="distribution"), 40)
    assert_fits(text, 40)
    [table] = parse(text)
    shown = [name for name in table["header"][1:] if not name.startswith("…")]
    assert shown == names[: len(shown)]
    assert len(shown) + hidden(table["header"], "classes") == 4


def test_precision_rounds_every_number():
    probs = reference_softmax(BATCH_LOGITS[:3])
    text = render(Result({"probs": probs}, layout="distribution"), 200, precision=2)
    [table] = parse(text)
    for cells_ in table["rows"]:
        for cell in cells_[1:]:
            assert re.fullmatch(r"\d\.\d\d", cell)


def test_reliability_in_colour_names_colours_it_shows_and_no_colour_names_none():
    bins = reliability_of(np.array([0.55, 0.65, 0.95]), np.array([0.0, 1.0, 1.0]), 5)
    result = Result({"temperatures": np.array([1.0]), "entropy": np.array([0.5])}, column=True, layout="sweep",
                    display={"reliability": bins})
    coloured = render(result, 80, colour=True)
    assert "\x1b[31m" in coloured and "\x1b[34m" in coloured  # red and blue bars
    plain = render(result, 80, colour=True, no_color=True)
    assert "\x1b[31m" not in plain and "\x1b[34m" not in plain
    for text in (coloured, plain):
        assert "█ confidence" in re.sub(r"\x1b\[[0-9;]*m", "", text)
        assert "━ accuracy" in re.sub(r"\x1b\[[0-9;]*m", "", text)
        assert "red" not in text and "blue" not in text


# ---------------------------------------------------------------- the per-quantity number format

def test_one_quantity_shares_its_decimals():
    shown = [number_format(np.array([0.117, 0.0004239]), probability=True)(v) for v in (0.117, 0.0004239)]
    assert shown == ["0.11700", "0.00042"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.floats(0, 1e-9), st.floats(1 - 1e-9, 1), st.just(1 - 2**-53)),
                min_size=1, max_size=30))
def test_probabilities_never_show_as_zero_or_one_unless_they_are(values):
    values = np.array(values)
    format_ = number_format(values, probability=True)
    texts = [format_(v) for v in values]
    for value, text in zip(values, texts):
        assert_shows(text, value)
        if 0 < value:
            assert float(text) != 0, (value, text)
        if value < 1:
            assert float(text) != 1 or "e" in text, (value, text)
    assert len({len(text.split(".")[1]) for text in texts if "e" not in text and "." in text}) <= 1


def test_integers_and_non_finite_values():
    assert [number_format(np.array([3, 12]))(v) for v in (3, 12)] == ["3", "12"]
    format_ = number_format(np.array([-np.inf, np.nan, -0.0, 1.5]))
    assert [format_(v) for v in (-np.inf, np.nan, -0.0, 1.5)] == ["-inf", "nan", "0.000", "1.500"]


# ---------------------------------------------------------------- the progress bar's figures

def test_progress_figures_share_units_and_separate_thousands():
    assert count_text(1234567, 10000000, "rows") == "1,234,567/10,000,000 rows"
    assert rate_text(52345.6, "rows") == "52,346 rows/s"
    assert rate_text(None, "rows") == ""
    assert eta_text(None) == "" and eta_text(3725) == "eta 1:02:05"


def test_progress_bar_never_shows_an_empty_eta_frame():
    from rich.progress import BarColumn, Progress

    stream = io.StringIO()
    console = Console(file=stream, width=120, force_terminal=True, color_system=None)
    with Progress(BarColumn(), *figures("rows"), console=console, auto_refresh=False) as bar:
        task = bar.add_task("rows", total=2_000_000)
        bar.refresh()
        bar.update(task, completed=1_500_000)
        bar.refresh()
    text = stream.getvalue()
    assert "-:--:--" not in text
    assert "0/2,000,000 rows" in text and "1,500,000/2,000,000 rows" in text


# ---------------------------------------------------------------- the real command at a fixed COLUMNS

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    np.save(folder / "batch.npy", BATCH_LOGITS)
    labels = np.argmax(BATCH_LOGITS, -1)
    labels[::3] = (labels[::3] + 1) % 10  # some wrong, so a finite temperature minimises NLL
    np.save(folder / "labels.npy", labels)
    np.savez(folder / "qkv.npz", q=RNG.normal(size=(5, 4)), k=RNG.normal(size=(12, 4)), v=RNG.normal(size=(12, 3)))
    return folder


COMMANDS = {
    "probs": ["probs", "{batch}"],
    "probs-vector": ["probs", "3", "2", "1", "0", "--classes", "a,b,c,d"],
    "loss": ["loss", "{batch}", "--labels", "{labels}"],
    "grad": ["grad", "{batch}", "--labels", "{labels}"],
    "jacobian": ["jacobian", "1", "2", "3", "4", "5", "6", "7"],
    "topk": ["topk", "{batch}", "-k", "4", "--labels", "{labels}"],
    "temperature-sweep": ["temperature-sweep", "{batch}", "--labels", "{labels}", "--fit"],
    "attention": ["attention", "{qkv}", "--return-weights"],
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_fits_columns(files, command, width):
    args = [arg.format(batch=files / "batch.npy", labels=files / "labels.npy", qkv=files / "qkv.npz")
            for arg in COMMANDS[command]]
    completed = run(*args, "-f", "table", env={"COLUMNS": str(width)})
    assert completed.returncode == 0, completed.stderr
    assert_fits(completed.stdout, width)
    found = parse(completed.stdout)
    assert found
    for table in found:
        for cells_ in table["rows"]:
            for cell in cells_:
                for token in cell.split():
                    if token[0].isdigit() or token[0] == "-" and token[1:2].isdigit():
                        assert NUMBER.fullmatch(token) or re.fullmatch(r"\d\.\d\d–\d\.\d\d", token), token
    if width == 200 and command == "probs":
        assert "more classes" not in completed.stdout
    if width == 40 and command in ("probs", "grad", "attention"):
        assert "… " in completed.stdout and " more " in completed.stdout


@pytest.mark.parametrize("no_color", ["", "1"])
def test_reliability_on_a_terminal_with_and_without_colour(monkeypatch, no_color):
    from conftest import ROOT, in_terminal

    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("COLUMNS", "60")
    data = str(ROOT / "sample_data" / "digits_val.npz")
    completed = in_terminal("temperature-sweep", data, "--labels", data, "--temperatures", "1")
    assert completed.returncode == 0, completed.stdout
    text = completed.stdout.decode()
    coloured = "\x1b[31m" in text and "\x1b[34m" in text
    assert coloured == (not no_color)
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)
    assert "█ confidence" in plain and "━ accuracy" in plain and "━━" in plain
    assert "red" not in plain and "blue" not in plain


# ---------------------------------------------------------------- every width, on a terminal, against the machine output

TERMINAL_WIDTHS = (20, 30, 40, 80, 200)
LONG_NAMES = [f"class_with_a_long_name_{j}" for j in range(6)]
ON_A_TERMINAL = {
    "compare": ["compare", "{data}/compare_ref.npy", "{data}/compare_cand.npy"],
    "compare-labels": ["compare", "{data}/compare_ref.npy", "{data}/compare_cand.npy", "--labels",
                       "{data}/digits_val_labels.npy"],
    "probs": ["probs", "{batch}"],
    "probs-long-names": ["probs", "{long}"],
    "probs-vector": ["probs", "3", "2", "1", "0", "--classes", ",".join(LONG_NAMES[:4])],
    "topk": ["topk", "{batch}", "-k", "4", "--labels", "{labels}"],
    "topk-long-names": ["topk", "{long}", "-k", "2"],
    "topk-vector": ["topk", "30", "1", "0", "-k", "3"],
    "temperature-sweep": ["temperature-sweep", "{batch}", "--labels", "{labels}"],
    "temperature-sweep-long-names": ["temperature-sweep", "{long}"],
    "loss": ["loss", "{batch}", "--labels", "{labels}"],
}
# A bar says how much with its length: no number in it to cut, and no header needed.
BAR_GLYPHS = set("█▏▎▍▌▋▊▉━╸ ")
SHOWN_NUMBER = re.compile(r"(?<![\w.–-])-?\d[\d,]*(\.\d+)?(e[+-]\d+)?%?(?![\w.–])")


def values_behind(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Every number a table may show: the machine output's, and what a table adds up from them.

    A table adds running sums of a row's ranked probabilities (topk's ``sum``, the mass of the classes left
    out) and each row's entropy with its mean, computed here from the probabilities the machine output holds.
    """
    found = []
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in "fiub":
            continue
        value = value.astype(np.float64)
        found.append(value.ravel())
        if name == "probs" and value.ndim:
            ranked = -np.sort(-value, axis=-1)
            found += [np.cumsum(ranked, axis=-1).ravel(), np.cumsum(ranked[..., ::-1], axis=-1).ravel()]
            found += [entropy(value).ravel(), np.atleast_1d(entropy(value).mean())]
    return np.sort(np.concatenate(found))


def assert_a_value_behind(token: str, pool: np.ndarray) -> None:
    """``token`` is some value of ``pool`` rounded to the digits it shows (a percentage: of 100 times it)."""
    percent = token.endswith("%")
    number = token.rstrip("%").replace(",", "")
    value = float(number) / 100 if percent else float(number)
    room = tolerance(number) / 100 if percent else tolerance(number)
    near = pool[np.searchsorted(pool, value - room):np.searchsorted(pool, value + room, side="right")]
    assert near.size, f"{token} is no value of the machine output rounded to the digits shown"


@pytest.fixture(scope="module")
def terminal_files(files):
    from conftest import ROOT

    rng = np.random.default_rng(0)
    np.savetxt(files / "long.csv", rng.normal(size=(5, 6)), delimiter=",", header=",".join(LONG_NAMES), comments="")
    return {"data": ROOT / "sample_data", "batch": files / "batch.npy", "labels": files / "labels.npy",
            "long": files / "long.csv"}


@pytest.mark.parametrize("width", TERMINAL_WIDTHS)
@pytest.mark.parametrize("command", sorted(ON_A_TERMINAL))
def test_on_a_terminal_every_number_is_a_value_rounded_and_every_column_is_named(terminal_files, command, width,
                                                                                 tmp_path, monkeypatch):
    from conftest import in_terminal

    args = [arg.format(**terminal_files) for arg in ON_A_TERMINAL[command]]
    machine = run(*args, "-o", tmp_path / "all.npz")
    assert machine.returncode == 0, machine.stderr
    with np.load(tmp_path / "all.npz") as saved:
        pool = values_behind(dict(saved))
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("NO_COLOR", "1")
    shown = in_terminal(*args)
    assert shown.returncode == 0, shown.stdout
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", shown.stdout.decode()).replace("\r\n", "\n")
    for line in text.splitlines():
        assert cell_len(line) <= width, f"{cell_len(line)} > {width}: {line!r}"
        assert not re.search(r"\S…", line), f"something cut short: {line!r}"
        for match in SHOWN_NUMBER.finditer(line):
            token = match.group(0)
            if re.search(r"[.e]", token):  # a bare whole number is a row, a rank or a count
                assert_a_value_behind(token, pool)
    for table in parse(text):
        for j, header in enumerate(table["header"]):
            column = [row[j] for row in table["rows"]]
            if not header:
                assert set("".join(column)) <= BAR_GLYPHS and "".join(column).strip(), \
                    f"column {j} shown without its header: {column}"
