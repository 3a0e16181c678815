"""Is this the question the user meant? Signs that an input is not what its place says it is.

Pure tests on arrays and counts, no messages: the command line decides what
to say. Probabilities given as logits (:func:`probability_shaped`), a label
column left among the classes (:func:`label_like_columns`), the row positions
pandas leaves as a column (:func:`row_position_columns`, :func:`first_column_positions`) and the levels of a
named index written as columns (:func:`index_level_columns`), columns whole in every row beside fractional
logits (:func:`whole_number_columns`: ids, flags), next-token labels in the other alignment than asked
(:func:`next_token_alignment`), and top-1 accuracy below chance by more than chance explains
(:func:`below_chance`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

# How many rows the probability test reads: the first ones, in row order. A fixed count (not a
# block of bytes) gives the same answer whether a file is read whole or streamed, at any block size.
PROBABILITY_CHECK_ROWS = 1024
CHECK_CHUNK_ELEMENTS = 1 << 16
# A stored distribution sums to 1 within half an epsilon of its dtype (each value is rounded
# relative to itself), plus its producer's own rounding: 4 epsilons cover both. The floor admits
# probabilities computed in float32 and saved as float64, or written to text with 3+ decimals.
PROBABILITY_SUM_FLOOR = 1e-3
BFLOAT16_EPS = 2.0**-7

LABEL_COLUMN_NAMES = ("label", "labels", "target", "targets", "y", "y_true", "class", "classes", "category", "gt",
                      "ground_truth", "true_label", "true_class", "label_id", "label_ids", "class_id", "target_id")
# The names pandas gives the row positions it keeps as a column: reset_index() ("index", or
# "level_0" when "index" is taken) and read_csv() of a file written with its index ("Unnamed: 0").
ROW_POSITION_COLUMN = re.compile(r"index|level_0|Unnamed: 0")
# A first column under another name is taken for row positions from this many rows on.
NAMED_POSITIONS_MIN_ROWS = 3
# A column of logits is whole in every one of n rows by chance with probability about q ** n, where q is the
# share of whole values in the other columns (counted as (whole + 1) / (values + 2), so that a small table is
# no evidence); over C columns, C times that. Below this, the column is an id, a flag, a count or labels.
WHOLE_COLUMN_SIGNIFICANCE = 1e-4

# The below-chance test: one-sided, at this significance, and only when at least this many rows
# are expected right by chance (below that, not even zero right is evidence at this level).
BELOW_CHANCE_SIGNIFICANCE = 1e-4
BELOW_CHANCE_MIN_EXPECTED = 10


def probability_tolerance(dtype: npt.DTypeLike) -> float:
    """How far from 1 a row of ``dtype`` may sum and still be a distribution: ``max(1e-3, 4 eps)``."""
    dtype = np.dtype(dtype)
    eps = BFLOAT16_EPS if dtype.name == "bfloat16" else float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0
    return max(PROBABILITY_SUM_FLOOR, 4 * eps)


def probability_shaped(array: npt.ArrayLike, axis: int = -1, total: float = 1.0, rounding: bool = True) -> bool:
    """Whether ``array`` reads as probabilities along ``axis`` rather than logits.

    True when there is more than one class, the array is floating point, and
    each of its first :data:`PROBABILITY_CHECK_ROWS` rows lies in ``[0, 1]``
    and sums to 1 within :func:`probability_tolerance`, with at least one
    value strictly between 0 and 1 (rows of only 0 and 1 are as likely to be
    logits typed by hand, ``1 0 0``, as one-hot distributions). Values that
    all lie on a grid of 2 or 3 decimals (probabilities rounded for a report,
    ``df.round(2)``) may sum to 1 within ``C`` half-units ``h`` of their last
    decimal, and within ``5 h sqrt(C / 3)`` (:data:`ROUNDING_SIGMAS`). With
    ``total=100`` the rows are percentages: in ``[0, 100]``, summing to 100,
    with some value above 1. ``rounding=False`` allows no rounding of decimals.

    Examples
    --------
    >>> probability_shaped([0.7, 0.2, 0.1]), probability_shaped([3.0, 2.0, 1.0])
    (True, False)
    >>> probability_shaped([0.33, 0.33, 0.33]), probability_shaped([70.0, 20.0, 10.0], total=100)
    (True, True)
    """
    array = np.asarray(array)
    if array.ndim == 0 or array.dtype.kind != "f" and array.dtype.name != "bfloat16":
        return False
    rows = np.moveaxis(array, axis, -1)
    n_classes, lead = rows.shape[-1], rows.shape[:-1]
    n_rows = int(np.prod(lead, dtype=np.int64))
    if n_classes < 2 or n_rows == 0:
        return False
    # Only the first rows are gathered: a memory-mapped file is not read whole for this.
    count = min(n_rows, PROBABILITY_CHECK_ROWS)
    # A few rows at a time, in float64: 1,024 rows of a large vocabulary at once would be hundreds of MiB.
    step = max(1, CHECK_CHUNK_ELEMENTS // n_classes)

    def chunks() -> Iterator[np.ndarray]:
        for first in range(0, count, step):
            at = np.arange(first, min(first + step, count))
            if rows.flags.c_contiguous:
                values = rows.reshape(-1, n_classes)[at[0]:at[-1] + 1]
            else:
                values = rows[np.unravel_index(at, lead) if lead else ()]
            yield np.asarray(values, dtype=np.float64).reshape(-1, n_classes) / total

    decimals = next((d for d in ROUNDED_DECIMALS if all(_on_grid(values, d) for values in chunks())), None) \
        if rounding else None
    half_unit = 0.5 * 10.0**-decimals if decimals else 0.0
    slack = min(n_classes * half_unit, ROUNDING_SIGMAS * half_unit * math.sqrt(n_classes / 3))
    tolerance = max(probability_tolerance(array.dtype), slack)
    some_strictly_inside = some_above_one = False
    for values in chunks():
        with np.errstate(over="ignore", invalid="ignore"):
            if not ((values >= 0) & (values <= 1)).all():
                return False
            some_strictly_inside = some_strictly_inside or bool(((values > 0) & (values < 1)).any())
            some_above_one = some_above_one or bool((values * total > 1).any())
            if not (np.abs(values.sum(axis=-1) - 1) <= tolerance).all():
                return False
    return some_strictly_inside and (total == 1 or some_above_one)


# Probabilities rounded for a report (df.round(2)) lie on a grid of this many decimals; each of C values is then
# off by up to half a unit h of the last one, uniformly, so their sum by at most C h and rarely by more than
# 5 standard deviations, 5 h sqrt(C / 3). One decimal is left out: typed logits such as "0.6 0.3 0.2" are on it.
ROUNDED_DECIMALS = (2, 3)
ROUNDING_SIGMAS = 5


def _on_grid(values: np.ndarray, decimals: int) -> bool:
    """Whether every finite value is a multiple of ``10**-decimals`` (as its text would be, written so)."""
    with np.errstate(over="ignore", invalid="ignore"):  # logits near 1e308 are no grid, and need not say so
        scaled = values * 10.0**decimals
        return bool((np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1, np.abs(scaled)))[
            np.isfinite(scaled)].all())


def is_label_name(name: str) -> bool:
    """Whether a column's name is one labels go by (:data:`LABEL_COLUMN_NAMES`, in any case, ``-`` or a space
    for ``_``)."""
    return re.sub(r"[-\s]+", "_", name.strip().lower()) in LABEL_COLUMN_NAMES


def label_like_columns(names: list[str] | None, array: npt.ArrayLike) -> list[str]:
    """The columns of a 2-D table whose name is a label's (:data:`LABEL_COLUMN_NAMES`) and which hold whole numbers.

    Examples
    --------
    >>> label_like_columns(["a", "b", "Label"], [[0.2, 1.5, 1], [3.1, -0.4, 0]])
    ['Label']
    """
    array = np.asarray(array)
    if names is None or array.ndim != 2 or array.shape[1] != len(names) or array.dtype.kind not in "fiub":
        return []
    found = []
    for column, name in enumerate(names):
        if is_label_name(name):
            values = array[:, column]
            if values.dtype.kind != "f" or bool((np.isfinite(values) & (values == np.trunc(values))).all()):
                found.append(name)
    return found


def row_position_columns(names: list[str] | None, array: npt.ArrayLike) -> list[str]:
    """The columns of a 2-D table that hold exactly 0, 1, ..., rows - 1 as row positions, not a class.

    A column under a name pandas gives row positions (:data:`ROW_POSITION_COLUMN`),
    or the first column under any name (a named index, ``df.rename_axis("id").to_csv()``,
    or an ``i`` column) when there are at least :data:`NAMED_POSITIONS_MIN_ROWS` rows and
    some other column holds a number that is not whole: whole-number logits may count up
    by chance, logits with fractions do not.

    Examples
    --------
    >>> row_position_columns(["index", "a", "b"], [[0, 1.5, 2.0], [1, 0.5, -1.0]])
    ['index']
    >>> row_position_columns(["index", "a", "b"], [[3, 1.5, 2.0], [7, 0.5, -1.0]])
    []
    """
    array = np.asarray(array)
    if names is None or array.ndim != 2 or array.shape[1] != len(names) or array.dtype.kind not in "fiu":
        return []
    positions = np.arange(array.shape[0])
    found = [name for column, name in enumerate(names)
             if ROW_POSITION_COLUMN.fullmatch(name) and bool((array[:, column] == positions).all())]
    return found or ([names[0]] if first_column_positions(array) else [])


def first_column_positions(array: npt.ArrayLike) -> bool:
    """Whether a 2-D table's first column holds exactly 0, 1, ..., rows - 1 beside numbers that are not whole,
    from :data:`NAMED_POSITIONS_MIN_ROWS` rows on: the row positions a named index (or an index written
    without a header, ``df.to_csv(header=False)``) leaves, not a class.

    Examples
    --------
    >>> first_column_positions([[0, 1.5, 2.0], [1, 0.5, -1.0], [2, 0.0, 1.0]])
    True
    >>> first_column_positions([[0, 1.0, 2.0], [1, 0.0, -1.0], [2, 0.0, 1.0]])
    False
    """
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[0] < NAMED_POSITIONS_MIN_ROWS or array.shape[1] < 2 or array.dtype.kind not in "fiu":
        return False
    return _has_fractions(array[:, 1:]) and bool((array[:, 0] == np.arange(array.shape[0])).all())


def index_level_columns(names: list[str] | None, array: npt.ArrayLike, integer_columns: int) -> list[str]:
    """The first ``integer_columns`` columns of a 2-D table, named and written as integers, when some
    later column holds a number that is not whole: the levels of a named index
    (``df.set_index(["doc", "token"]).to_csv()``), not classes. From :data:`NAMED_POSITIONS_MIN_ROWS`
    rows on, as for :func:`row_position_columns`.

    Examples
    --------
    >>> index_level_columns(["doc", "a", "b"], [[7, 1.5, 2.0], [9, 0.5, -1.0], [9, 0.0, 1.0]], 1)
    ['doc']
    >>> index_level_columns(["doc", "a", "b"], [[7, 1.0, 2.0], [9, 0.0, -1.0], [9, 0.0, 1.0]], 1)
    []
    """
    array = np.asarray(array)
    if (names is None or integer_columns < 1 or array.ndim != 2 or array.shape[1] != len(names)
            or array.shape[0] < NAMED_POSITIONS_MIN_ROWS or integer_columns >= array.shape[1]):
        return []
    return list(names[:integer_columns]) if _has_fractions(array[:, integer_columns:]) else []


def whole_number_columns(names: list[str] | None, array: npt.ArrayLike) -> list[str]:
    """The named columns of a 2-D table whole and non-negative in every row, not all one value, where the other
    columns are mostly not whole: an id, a flag, a count or labels, not a class (:data:`WHOLE_COLUMN_SIGNIFICANCE`;
    from :data:`NAMED_POSITIONS_MIN_ROWS` rows on, over the first :data:`PROBABILITY_CHECK_ROWS`). A constant
    column is a baseline class (a multinomial logit's 0), and a negative one a masked class (-1e9).

    Examples
    --------
    >>> ids = [[1001, 1.5, 2.25], [1002, 0.5, -1.5], [1005, 0.25, 1.75], [1007, 2.5, 0.75], [1008, 1.25, 0.5]]
    >>> whole_number_columns(["id", "a", "b"], ids)
    ['id']
    >>> whole_number_columns(["id", "a", "b"], [[1001, 1.5, 2.0], [1002, 0.0, -1.0], [1005, 0.0, 1.0]])
    []
    """
    array = np.asarray(array)
    if (names is None or array.ndim != 2 or array.shape[1] != len(names) or array.shape[1] < 2
            or array.dtype.kind != "f" or array.shape[0] < NAMED_POSITIONS_MIN_ROWS):
        return []
    n_rows, n_classes = min(array.shape[0], PROBABILITY_CHECK_ROWS), array.shape[1]
    step = max(1, CHECK_CHUNK_ELEMENTS // n_classes)
    whole_counts, candidate = np.zeros(n_classes, dtype=np.int64), np.ones(n_classes, dtype=bool)
    first_row = np.asarray(array[0], dtype=np.float64)
    varies = np.zeros(n_classes, dtype=bool)
    for first in range(0, n_rows, step):
        block = np.asarray(array[first:min(first + step, n_rows)], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            whole_counts += (np.isfinite(block) & (block == np.trunc(block))).sum(axis=0)
            candidate &= (block >= 0).all(axis=0)
            varies |= (block != first_row).any(axis=0)
    candidate &= (whole_counts == n_rows) & varies
    share_elsewhere = (whole_counts.sum() - n_rows + 1) / (n_rows * (n_classes - 1) + 2)
    if n_classes * share_elsewhere ** n_rows >= WHOLE_COLUMN_SIGNIFICANCE:
        return []
    return [name for name, found in zip(names, candidate.tolist()) if found]


def _has_fractions(array: np.ndarray) -> bool:
    """Whether some finite number in ``array`` is not whole (whole-number logits may count up by chance)."""
    return array.dtype.kind == "f" and not bool((~np.isfinite(array) | (array == np.trunc(array))).all())


def next_token_alignment(predicted: npt.ArrayLike, labels: npt.ArrayLike, ignore_index: int = -100,
                         significance: float = BELOW_CHANCE_SIGNIFICANCE) -> tuple[int | None, int, int]:
    """Whether the top-1 predictions of sequences ``(S, T)`` agree with each position's own label or with the next
    position's, beyond chance: McNemar's test of the positions where exactly one of the two agrees.

    Returns ``(alignment, next_only, own_only)``: alignment 1 when the label at ``t + 1`` agrees with the
    prediction at ``t`` significantly more often (next-token labels not shifted yet), 0 when the label at
    ``t`` does (labels already shifted), None when neither is significant; and the two counts. Positions
    whose label or next label is ``ignore_index`` are not counted.

    Examples
    --------
    >>> tokens = np.arange(40).reshape(1, 40) % 7
    >>> next_token_alignment(np.roll(tokens, -1, axis=1), tokens)[0]  # the model predicts the next token
    1
    """
    predicted, labels = np.asarray(predicted)[..., :-1], np.asarray(labels)
    own, following = labels[..., :-1], labels[..., 1:]
    counted = (own != ignore_index) & (following != ignore_index)
    agree_own, agree_next = (predicted == own) & counted, (predicted == following) & counted
    next_only, own_only = int((agree_next & ~agree_own).sum()), int((agree_own & ~agree_next).sum())
    discordant = next_only + own_only
    if binomial_lower_tail(own_only, discordant, 0.5) < significance:
        return 1, next_only, own_only
    if binomial_lower_tail(next_only, discordant, 0.5) < significance:
        return 0, next_only, own_only
    return None, next_only, own_only


def one_based_evidence(predicted: npt.ArrayLike, labels: npt.ArrayLike, ignore_index: int = -100,
                       significance: float = BELOW_CHANCE_SIGNIFICANCE) -> tuple[bool, int, int]:
    """Whether top-1 predictions agree with ``label - 1`` beyond chance more often than with the label itself
    (class indices counted from 1): McNemar's test of the positions where exactly one of the two agrees.

    Returns ``(one_based, below_only, own_only)``. Positions labelled ``ignore_index`` are not counted.

    Examples
    --------
    >>> truth = np.arange(60) % 9
    >>> one_based_evidence(truth, truth + 1)[0]  # a model right about every row, against labels from 1
    True
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    counted = labels != ignore_index
    agree_own, agree_below = (predicted == labels) & counted, (predicted == labels - 1) & counted
    below_only, own_only = int((agree_below & ~agree_own).sum()), int((agree_own & ~agree_below).sum())
    return binomial_lower_tail(own_only, below_only + own_only, 0.5) < significance, below_only, own_only


# Padding is a run of one token id at the end (right padding) or the start (left padding) of a sequence; from this
# long, in two sequences or more, of unequal lengths, it is taken for padding rather than text.
PADDING_MIN_RUN = 3


def padding_runs(token_ids: npt.ArrayLike, ignore_index: int = -100) -> tuple[int, str, list[int]] | None:
    """The padding a batch of token ids ``(..., T)`` seems to hold: ``(token id, "end" or "start", run lengths)``
    when two sequences or more end (or start) with runs of one id, at least :data:`PADDING_MIN_RUN` long and not
    all of one length (padding to the longest sequence); None when the labels mark padding themselves (any
    ``ignore_index``) or no such runs are found.

    Examples
    --------
    >>> ids = np.array([[5, 8, 2, 9, 4, 7], [3, 6, 1, 0, 0, 0], [2, 0, 0, 0, 0, 0]])
    >>> padding_runs(ids)
    (0, 'end', [3, 5])
    >>> padding_runs(np.array([[5, 8, 2, 9], [3, 6, 1, 4]])) is None
    True
    """
    ids = np.asarray(token_ids)
    if ids.ndim < 2 or ids.shape[-1] < PADDING_MIN_RUN or not ids.size or ids.dtype.kind not in "iuf":
        return None
    ids = ids.reshape(-1, ids.shape[-1])
    if (ids == ignore_index).any():
        return None
    for side, ordered in (("end", ids[:, ::-1]), ("start", ids)):
        edge = ordered[:, :1]
        # The length of each sequence's run of its edge token: up to the first position that differs.
        differs = ordered != edge
        runs = np.where(differs.any(axis=1), differs.argmax(axis=1), ordered.shape[1])
        long = runs >= PADDING_MIN_RUN
        for token in np.unique(edge[long, 0]):
            lengths = runs[long & (edge[:, 0] == token)]
            if len(lengths) >= 2 and len(set(lengths.tolist())) > 1:
                return int(token), side, sorted(int(length) for length in lengths)
    return None


def binomial_lower_tail(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``, summed down from ``k`` in log space.

    Below the mean each term is a shrinking multiple of the one above it, so
    the sum stops once a term no longer changes it.

    Examples
    --------
    >>> round(binomial_lower_tail(0, 10, 0.5), 6)
    0.000977
    """
    if k < 0:
        return 0.0
    if k >= n or p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    log_pmf = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
               + k * math.log(p) + (n - k) * math.log1p(-p))
    total, term, odds = 1.0, 1.0, (1 - p) / p
    for i in range(k, 0, -1):
        term *= i / (n - i + 1) * odds
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, math.exp(log_pmf + math.log(total)))


def below_chance(correct: int, counted: int, n_classes: int,
                 significance: float = BELOW_CHANCE_SIGNIFICANCE) -> float | None:
    """The p-value when ``correct`` of ``counted`` rows right is below chance (1/C) beyond ``significance``, else None.

    A one-sided binomial test of top-1 accuracy against ``1 / n_classes``. It
    is made only when chance alone would get at least
    :data:`BELOW_CHANCE_MIN_EXPECTED` rows right; with fewer rows it gives None.

    Examples
    --------
    >>> below_chance(0, 1000, 10) is not None, below_chance(95, 1000, 10)
    (True, None)
    """
    if n_classes < 2 or counted * (1 / n_classes) < BELOW_CHANCE_MIN_EXPECTED:
        return None
    p_value = binomial_lower_tail(int(correct), int(counted), 1 / n_classes)
    return p_value if p_value < significance else None
