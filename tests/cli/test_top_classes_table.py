"""A batch with more classes than fit shows each row's most probable classes, in order, and counts the rest;
every probability of a table has one number format.

Through the real entry point (``-f table``, the terminal's width in ``COLUMNS``)
on 10, 1000 and 32000 classes at 40, 80 and 200 columns, against NumPy float64.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import reference_softmax, run

NAMES = ["airplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def table(path, columns: int, *options) -> tuple[list[str], list[list[str]], str]:
    """(header per column, body rows' cells, the whole text) of the first table drawn."""
    done = run("probs", path, "-f", "table", *options, env={"COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), [line for line in lines if len(line) > columns]
    head = [[cell.strip() for cell in line.strip("┃").split("┃")] for line in lines if line.startswith("┃")]
    header = [" ".join(part for part in parts if part) for parts in zip(*head)]
    body = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    return header, body, done.stdout


def logits_file(tmp_path, n_classes: int, rows: int = 12):
    rng = np.random.default_rng(n_classes)
    logits = rng.normal(scale=3.0, size=(rows, n_classes))
    path = tmp_path / f"logits{n_classes}.npy"
    np.save(path, logits)
    return path, logits


def decimals(cell: str) -> int | None:
    """Decimals of a fixed-notation number (None for scientific notation)."""
    return None if "e" in cell else len(cell.partition(".")[2])


@pytest.mark.parametrize("n_classes", [10, 1000, 32000])
@pytest.mark.parametrize("columns", [40, 80, 200])
def test_each_row_shows_its_most_probable_classes_in_order(tmp_path, n_classes, columns):
    path, logits = logits_file(tmp_path, n_classes)
    options = ("--classes", ",".join(NAMES)) if n_classes == 10 else ()
    header, body, text = table(path, columns, *options)
    expected = reference_softmax(logits)
    if n_classes == 10 and columns == 200:  # every class fits: one column per class, by name
        assert header[1:11] == NAMES
        return
    ranks = [i for i, name in enumerate(header) if re.fullmatch(r"#\d+", name)]
    assert ranks, f"not one ranked class fits at {columns} columns:\n{text}"
    assert [header[i] for i in ranks] == [f"#{r + 1}" for r in range(len(ranks))]
    note = next(name for name in header if name.startswith("…"))
    assert re.match(rf"… {n_classes - len(ranks)} more classes", note), note
    for row, cells in enumerate(body):
        order = np.argsort(-expected[row], kind="stable")[: len(ranks)]
        names = [NAMES[j] for j in order] if n_classes == 10 else [str(j) for j in order]
        assert [cells[i] for i in ranks] == names, (row, cells)
        for i, j in zip(ranks, order):
            assert float(cells[i + 1]) == pytest.approx(expected[row, j], rel=0.06, abs=6e-5)
        if "Σp" in note:
            rest = np.sort(expected[row])[::-1][len(ranks):].sum()
            assert float(cells[header.index(note)]) == pytest.approx(rest, rel=0.06, abs=6e-5)
    if n_classes > 10:
        assert [body[0][i] for i in ranks] != [str(j) for j in range(len(ranks))]  # not the first by index


@pytest.mark.parametrize("n_classes", [10, 1000, 32000])
@pytest.mark.parametrize("columns", [40, 80, 200])
def test_one_number_format_for_every_probability_of_the_table(tmp_path, n_classes, columns):
    path, _ = logits_file(tmp_path, n_classes)
    header, body, _ = table(path, columns)
    # The entropy beside them, in nats, is another quantity with its own format.
    numbers = [cell for cells in body for name, cell in zip(header, cells)
               if name not in ("row", "entropy") and re.fullmatch(r"-?\d+\.\d+(e[-+]\d+)?", cell)]
    assert numbers
    assert len({decimals(cell) for cell in numbers if decimals(cell) is not None}) == 1, numbers


def test_ten_named_classes_show_as_many_as_fit_at_80_columns(tmp_path):
    path, _ = logits_file(tmp_path, 10)
    header, body, text = table(path, 80, "--classes", ",".join(NAMES))
    width = max(len(line) for line in text.splitlines() if line.startswith("┏"))
    ranks = [i for i, name in enumerate(header) if re.fullmatch(r"#\d+", name)]
    # One more (class, probability) pair would need the widest name and a probability, each with its borders.
    pair = max(map(len, NAMES)) + 3 + max(len(cells[ranks[0] + 1]) for cells in body) + 3
    assert width <= 80 < width + pair, (len(ranks), width)
