"""One rule, one validator: every core function that takes labels or logit rows words a problem the same way.

The label rules are checked by :func:`softmax_cli.core.check_labels` and the
logit-row rules by :func:`softmax_cli.core.logits.check_logit_rows`; these
tests pin that cross-entropy, ranking and calibration all go through them, and
that positions are named in the user's array when only a subset of its rows
(the labelled ones) is checked.
"""

from __future__ import annotations

import numpy as np
import pytest

from softmax_cli import core
from softmax_cli.core.logits import check_logit_rows
from softmax_cli.errors import InputError

inf = np.inf
LOGITS = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3]])

# Every core function that reads class-index labels for these three rows.
LABEL_READERS = {
    "cross_entropy": lambda y: core.cross_entropy(LOGITS, y),
    "cross_entropy_grad": lambda y: core.cross_entropy_grad(LOGITS, y),
    "mean_denominator": lambda y: core.mean_denominator(y, LOGITS.shape),
    "nll": lambda y: core.nll(LOGITS, y),
    "fit_temperature": lambda y: core.fit_temperature(LOGITS, y),
    "temperature_sweep": lambda y: core.temperature_sweep(LOGITS, [1.0], labels=y),
    "expected_calibration_error": lambda y: core.expected_calibration_error(PROBS, y),
    "reliability_bins": lambda y: core.reliability_bins(PROBS, y),
    "topk_accuracy": lambda y: core.topk_accuracy([[0], [1], [2]], y, num_classes=3),
    "check_labels": lambda y: core.check_labels(y, (3,), 3),
}


@pytest.mark.parametrize("reader", sorted(LABEL_READERS))
@pytest.mark.parametrize(
    "labels, message",
    [
        ([0, 1, 5], "label 5 is out of range for 3 classes (row 2)"),
        ([0, -1, 1], "label -1 is out of range for 3 classes (row 1)"),
        (np.array([0.0, 1.5, 1.0]), "label 1.5 is not a class index (a whole number) (row 1)"),
        (np.array([0.0, np.nan, 1.0]), "label nan is not a class index (a whole number) (row 1)"),
        (np.array([0.0, 1e30, 1.0]), "label 1e+30 is out of range for 3 classes (row 1)"),
        (np.array(["a", "b", "c"]), "class indices must be integers, got dtype <U1"),
    ],
)
def test_every_label_reader_words_a_bad_label_the_same(reader, labels, message):
    with pytest.raises(InputError) as caught:
        LABEL_READERS[reader](labels)
    assert str(caught.value) == message


def test_label_without_a_class_count_must_be_non_negative():
    with pytest.raises(InputError) as caught:
        core.topk_accuracy([[0, 1], [1, 2]], [0, -3])
    assert str(caught.value) == "label -3 is out of range (class indices are 0 or more) (row 1)"


def test_labels_of_nd_logits_name_the_row_tuple():
    logits = np.zeros((2, 3, 4))
    labels = np.array([[0, 1, 2], [3, 4, 0]])
    for function in (core.cross_entropy, core.nll):
        with pytest.raises(InputError) as caught:
            function(logits, labels)
        assert str(caught.value) == "label 4 is out of range for 4 classes (row (1, 1))"


# --------------------------------------------------------------------------- logit rows


def test_subset_of_rows_is_named_by_its_original_row():
    # Rows 0 and 2 are ignored, so the checked subset is rows 1 and 3; the bad value is in row 3.
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [2.0, np.nan]])
    labels = [-100, 0, -100, 1]
    for function in (core.nll, core.fit_temperature):
        with pytest.raises(InputError) as caught:
            function(logits, labels)
        assert str(caught.value) == (
            "NaN in logits; only finite values and -inf (a masked logit) are allowed (row 3, column 1)"
        )


def test_ignored_rows_are_not_checked():
    logits = np.array([[np.nan, 1.0], [1.0, 0.0], [-inf, -inf], [0.0, 2.0]])
    # Rows 1 and 3 lose log(1 + e^-1) and log(1 + e^-2).
    expected = (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-2.0))) / 2
    assert core.nll(logits, [-100, 0, -100, 1]) == pytest.approx(expected, rel=1e-14)


def test_masked_subset_row_is_named_and_worded_as_everywhere():
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [-inf, -inf]])
    with pytest.raises(core.MaskedRowError) as caught:
        core.nll(logits, [-100, 0, 1])
    assert caught.value.where == "row 2"
    assert caught.value.message.startswith("every logit in the row is -inf, so it has no distribution; ")
    others = (lambda z: core.softmax(z, masked_rows="error"),
              lambda z: core.cross_entropy(z, [0, 0, 1], masked_rows="error"))
    for function in others:
        with pytest.raises(core.MaskedRowError) as other:
            function(logits)
        assert other.value.where == "row 2"
        assert other.value.message.startswith("every logit in the row is -inf, so it has no distribution; ")


def test_check_logit_rows_maps_row_ids_in_nd_arrays():
    shape = (2, 3, 2)  # rows are (i, j), classes last
    rows = np.array([[0.0, 1.0], [inf, 0.0]])
    with pytest.raises(InputError) as caught:
        check_logit_rows(rows, shape, 2, row_ids=np.array([1, 4]))
    assert caught.value.where == "row (1, 1), column 0"


def test_check_logit_rows_over_blocks_maps_the_later_block():
    # More rows than one block holds, so the bad row is found in a later block with its own offset.
    n_rows, n_cols = 5000, 64
    rows = np.zeros((n_rows, n_cols))
    rows[4321, 7] = np.nan
    row_ids = np.arange(n_rows) * 2 + 1
    with pytest.raises(InputError) as caught:
        check_logit_rows(rows, (2 * n_rows, n_cols), 1, row_ids=row_ids)
    assert caught.value.where == f"row {2 * 4321 + 1}, column 7"
    with pytest.raises(InputError) as plain:
        check_logit_rows(rows, (n_rows, n_cols), 1)
    assert plain.value.where == "row 4321, column 7"
