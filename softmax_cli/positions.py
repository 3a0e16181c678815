"""Which positions a row-wise command scores: ``--mask`` and ``--shift-labels``, fitted to the logits' rows.

Between the options and the core, as :mod:`softmax_cli.operands` is for labels:
the mask is read, checked against the logits' rows, shifted with the labels
for next-token scoring, and folded into the labels (a dropped position is
labelled with the ignore index), so every command scores the same positions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import core
from .errors import InputError, UsageError
from .formats.base import note
from .inputs import Loaded, align_rows
from .operands import MASK_NAME, load_padding_mask, mask_beside, naming_sources
from .options import Padding


def load_mask(padding: Padding) -> Loaded | None:
    """``--mask`` as read (``--mask-key`` picks its array), or None."""
    return None if padding.mask is None else load_padding_mask(padding.mask, padding.mask_key)


def without_header_row(mask: Loaded | None, lead: tuple[int, ...]) -> Loaded | None:
    """The mask without its first row ``0..T-1`` when that row is the header ``pd.DataFrame(mask).to_csv(index=False)``
    writes (``0`` for ``pd.Series(mask).to_csv(index=False)``): read as data (every row is integers), it leaves
    one row more than the logits have."""
    positions = int(np.prod(lead, dtype=np.int64))
    if mask is None or not mask.numbered_first_row or mask.array.ndim not in (1, 2) or mask.array.size == positions:
        return mask
    if mask.array[1:].size != positions:
        return mask
    header = "first value 0" if mask.array.ndim == 1 else f"first row 0..{mask.array.shape[1] - 1}"
    note(f"{header} of the mask read as its column names: {mask.array.shape[0] - 1} "
         f"rows for the logits' {positions} positions")
    return dataclasses.replace(mask, array=mask.array[1:])


def refuse_mask_left_out(logits: Loaded, lead: tuple[int, ...], labels: np.ndarray | None, shift: bool,
                         ignore_index: int) -> None:
    """Refuse a padded batch scored without the ``attention_mask`` saved beside its logits: positions it drops
    would be scored. Labels that hold the ignore index anywhere mark their own padding (Hugging Face's
    collators write -100 there; a seq2seq model's mask is the encoder's, not its labels'), and are trusted."""
    if labels is not None and labels.dtype.kind in "iuf" and bool((labels == ignore_index).any()):
        return
    beside = mask_beside(logits)
    if beside is None:
        return
    try:
        keep = core.check_mask(beside.array, lead)
    except InputError:  # not a mask of these positions: another array under that name
        return
    if shift:
        keep = core.shift_mask(keep, lead)
    dropped = ~keep
    if labels is not None and labels.shape == lead and labels.dtype.kind in "iuf":
        flat = labels.reshape(-1)
        dropped &= (core.shift_labels(flat, lead, ignore_index) if shift else flat) != ignore_index
    if dropped.any():
        raise InputError(f"the file holds an {MASK_NAME} that drops {int(dropped.sum())} position(s) these logits "
                         f"would score as given (padding); leave them out with --mask {logits.paths[0]}, which "
                         f"reads its {MASK_NAME}", where=str(logits.paths[0]))


def refuse_unmasked_padding(labels: np.ndarray, ignore_index: int) -> None:
    """Refuse token ids whose sequences end (or start) with runs of one id of unequal lengths, as a padded batch's
    do, scored without a mask and without the ignore index (:func:`softmax_cli.core.padding_runs`): the padding
    would be scored as text."""
    found = core.padding_runs(labels, ignore_index)
    if found is not None:
        token, side, lengths = found
        shown = ", ".join(map(str, lengths[:5])) + (", ..." if len(lengths) > 5 else "")
        raise InputError(f"{len(lengths)} sequences {side} with runs of token id {token} ({shown} positions), as "
                         f"padding does, and nothing leaves them out; give the attention_mask with --mask (or labels "
                         f"with {ignore_index} at the padding, as Hugging Face's collators write); to score every "
                         "position as given, pass a mask of ones (--mask ones.npy)", operand="labels")


def refuse_mask_of_padding(labels: np.ndarray, keep: np.ndarray, ignore_index: int) -> None:
    """Refuse a mask that keeps only positions of one token id while the positions it drops hold several: it keeps
    the padding (1 for padding, where Hugging Face's attention_mask has 1 for a token)."""
    from .core.plausibility import PADDING_MIN_RUN

    labelled = labels != ignore_index
    scored, dropped = labels[keep & labelled], labels[~keep & labelled]
    if (len(scored) >= PADDING_MIN_RUN and (scored == scored[0]).all()
            and len(np.unique(dropped)) >= 2):
        raise InputError(f"every position the mask keeps ({len(scored)}) has the token id {int(scored[0])}, while "
                         f"those it drops hold {len(np.unique(dropped))} different ids: it keeps the padding, as a "
                         "mask with 1 for padding does (Hugging Face's attention_mask has 1 for a token); give "
                         "1 - mask", operand="mask")


# Logits read to test the labels' alignment: a bounded sample, whatever the vocabulary (16 MiB of float32).
ALIGNMENT_SAMPLE_ELEMENTS = 1 << 22
# From this many classes on, rows of logits are taken for a vocabulary's (a language model's flattened positions).
VOCABULARY_CLASSES = 256


def refuse_misaligned(sample: tuple[np.ndarray, np.ndarray], shift: bool, ignore_index: int) -> None:
    """Refuse unshifted token ids scored without ``shift`` (Hugging Face's ``labels`` are unshifted), when the
    logits' own top-1 choices on the first positions of sequences (``sample``, :func:`_top1_sample`) pick the
    next position's label beyond chance (:func:`softmax_cli.core.next_token_alignment`)."""
    if shift:
        return
    found, next_only, own_only = core.next_token_alignment(*sample, ignore_index)
    # Only this way round: a model that picks each position's own token is untrained (tied embeddings echo
    # the input), not evidence of labels shifted twice.
    if found == 1:
        raise InputError(f"these labels look like unshifted token ids: the logits at a position pick the label of "
                         f"the next one ({next_only} sampled positions) far more often than their own ({own_only}); "
                         "for next-token scoring add --shift-labels (Hugging Face's causal-LM loss), or give "
                         "labels already shifted", operand="labels")


def refuse_one_based(sample: tuple[np.ndarray, np.ndarray], shift: bool, ignore_index: int) -> None:
    """Refuse class indices counted from 1 when the logits' own top-1 choices (``sample``, :func:`_top1_sample`)
    pick ``label - 1`` beyond chance more often than the label (:func:`softmax_cli.core.one_based_evidence`):
    with a vocabulary whose largest id never occurs the range check cannot see it, nor can the below-chance
    check (ten rows a class)."""
    predicted, wanted = sample
    if shift:  # position t is scored against the label of t + 1
        predicted, wanted = predicted[:, :-1], wanted[:, 1:]
    one_based, below_only, own_only = core.one_based_evidence(predicted, wanted, ignore_index)
    if one_based:
        raise InputError(f"these labels look 1-based: the logits pick label - 1 ({below_only} sampled positions) far "
                         f"more often than the label itself ({own_only}); subtract 1 to give class indices from 0",
                         operand="labels")


def refuse_nothing_labelled(labels: np.ndarray, ignore_index: int, shift: bool) -> None:
    """Refuse class-index labels that are all ``ignore_index``: nothing would be scored, and torch's answer (a NaN
    mean, a sum of 0) would pass a ``--max-loss`` or a per-sequence gate, or fail one, for a mistake."""
    if labels.size and (labels == ignore_index).all():
        moved = " once --shift-labels has moved them (each sequence labels only its first position)" if shift else ""
        raise InputError(f"every label is the ignore index ({ignore_index}){moved}, so nothing would be scored; give "
                         f"each scored position its class, with {ignore_index} only where a position is not scored "
                         "(Hugging Face's padding)", operand="labels")


def _top1_sample(rows: np.ndarray, labels: np.ndarray, keep: np.ndarray | None,
                 ignore_index: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The top-1 choices of the first positions of the first sequences (at most
    :data:`ALIGNMENT_SAMPLE_ELEMENTS` logits), as ``(S, T)``, with their labels (``ignore_index`` where ``keep``
    drops a position); None for logits in Fortran order, which would be copied whole to take them."""
    if rows.ndim < 2 or rows.shape[-2] < 2 or not rows.flags.c_contiguous:
        return None
    length, classes = (rows.shape[-2:] if rows.ndim > 2 else (rows.shape[0], rows.shape[1]))
    positions = min(length, max(2, ALIGNMENT_SAMPLE_ELEMENTS // classes))
    sequences = rows.reshape(-1, length, classes)
    count = max(1, min(sequences.shape[0], ALIGNMENT_SAMPLE_ELEMENTS // (positions * classes)))
    sample = np.asarray(sequences[:count, :positions], dtype=np.float64 if rows.dtype == np.float64 else np.float32)
    with np.errstate(invalid="ignore"):
        predicted = sample.argmax(axis=-1)
    wanted = labels.reshape(-1, length)[:count, :positions]
    if keep is not None:  # a dropped position (padding) says nothing about the labels
        wanted = np.where(keep.reshape(-1, length)[:count, :positions], wanted, ignore_index)
    return predicted, wanted


def scored(logits: Loaded, axis: int, labels: np.ndarray | None, truth: Loaded | None, mask: Loaded | None,
           shift: bool, ignore_index: int, check_plausibility: bool = False,
           alongside: tuple[Loaded, ...] = ()) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The labels (rows' shape; dropped positions labelled ``ignore_index``) and the flat keep-mask.

    With ``shift`` the position ``t`` takes the label and the mask of ``t + 1``
    (Hugging Face's causal-LM loss); the last position of a sequence is not
    scored. Without a mask or a shift the labels are returned as they are
    (the core checks them). The keep-mask is None without a mask. With
    ``check_plausibility`` (a command that scores positions, on logits read rather
    than stood in for) an ``attention_mask`` left out (:func:`refuse_mask_left_out`; of the logits, or of an input
    scored ``alongside`` them at the same positions: compare's candidate)
    unshifted next-token labels (:func:`refuse_misaligned`) and token ids counted from 1
    (:func:`refuse_one_based`) are refused. On every path, labels that score nothing
    (:func:`refuse_nothing_labelled`), a padded batch's token ids that nothing leaves out
    (:func:`refuse_unmasked_padding`) and a mask that keeps the padding (:func:`refuse_mask_of_padding`) are.
    """
    shape = logits.array.shape
    at = axis % len(shape)
    lead = shape[:at] + shape[at + 1:]
    if mask is None and check_plausibility:
        for scored_input in (logits, *alongside):
            refuse_mask_left_out(scored_input, lead, labels, shift, ignore_index)
    # The labels and the mask are read whole on every path (a cluster's logits are stood in for): checked always.
    sequences = len(shape) > 2 and at == len(shape) - 1
    # A vocabulary's ids only: token classification's few classes (an "O" tag ending most sentences) are no padding.
    if mask is None and sequences and shape[at] >= VOCABULARY_CLASSES and labels is not None and labels.shape == lead:
        with naming_sources(logits, {"labels": truth}):
            refuse_unmasked_padding(labels, ignore_index)
    mask = without_header_row(mask, lead)
    if mask is not None and mask.array.ndim and (logits.rows is not None or mask.rows is not None):
        named = mask if mask.rows is not None and len(mask.rows) == len(mask.array) else dataclasses.replace(mask, rows=None)
        with naming_sources(logits, {"mask": mask}):
            try:  # a mask with row names (a pandas Series' index) is paired with the logits' rows by name
                mask = align_rows(logits, named, ("the logits", "the mask"))
            except InputError as error:
                error.operand = "mask"
                raise
    if (check_plausibility and labels is not None and labels.shape == lead and labels.dtype.kind in "iuf"
            and at == len(shape) - 1):
        with naming_sources(logits, {"labels": truth, "mask": mask}):
            keep = None if mask is None else core.check_mask(mask.array, lead)
            # Sequences (B, T, V), or rows of a vocabulary: (N, C) rows are no sequence, and small class counts
            # have the below-chance check.
            sample = (_top1_sample(logits.array, labels, keep, ignore_index)
                      if len(shape) > 2 or shape[-1] >= VOCABULARY_CLASSES else None)
            if sample is not None:
                if len(shape) > 2:
                    refuse_misaligned(sample, shift, ignore_index)
                refuse_one_based(sample, shift, ignore_index)
    if mask is None and not shift:
        if labels is not None and labels.shape == lead:
            with naming_sources(logits, {"labels": truth}):
                refuse_nothing_labelled(labels, ignore_index, shift=False)
        return labels, None  # the core checks them where it reads them
    if labels is not None and labels.shape == shape and len(shape) > 1:
        raise UsageError("--mask and --shift-labels go with class-index --labels (one per position), not with "
                         "target distributions")
    if shift and labels is None:
        raise UsageError("--shift-labels moves --labels one position along the sequence; give --labels too")
    with naming_sources(logits, {"labels": truth, "mask": mask}):
        flat = None if labels is None else core.check_labels(labels, lead, shape[at], ignore_index)
        keep = None if mask is None else core.check_mask(mask.array, lead)
        if shift:
            flat = core.shift_labels(flat, lead, ignore_index)
            keep = None if keep is None else core.shift_mask(keep, lead)
        if flat is not None:
            refuse_nothing_labelled(flat, ignore_index, shift)
        if keep is not None and not keep.any():
            raise InputError("the mask keeps no position" + (" whose next token it keeps too" if shift else "")
                             + ", so nothing would be scored; a mask keeps a position with 1, as Hugging Face's "
                             "attention_mask does (a padding mask with 1 for padding is the other way round: 1 - "
                             "mask)", operand="mask")
    if flat is not None and keep is not None:
        if sequences:
            with naming_sources(logits, {"mask": mask}):
                refuse_mask_of_padding(flat, keep, ignore_index)
        flat = np.where(keep, flat, ignore_index)
        if flat.size and (flat == ignore_index).all():
            with naming_sources(logits, {"mask": mask}):
                raise InputError(f"the mask and the labels keep no position together: every position the mask keeps "
                                 f"has the label {ignore_index}, so nothing would be scored; is the mask the other way "
                                 "round (1 for padding, where Hugging Face's attention_mask has 1 for a token)? Give "
                                 "1 - mask", operand="mask")
    return (None if flat is None else flat.reshape(lead)), keep
