r"""The summary of two models' per-row divergences: means, standard error, maxima, quantiles, perplexities.

:func:`divergence_summary` reduces a :class:`~softmax_cli.core.rowdivergence.RowDivergence`
(from one call, or joined from streamed blocks) in float64 over the whole
per-row arrays, so the summary depends only on the rows' values, never on the
blocks they were computed in. :func:`divergence` is rows then summary in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import InputError
from .rowdivergence import RowDivergence, divergence_rows

if TYPE_CHECKING:
    import numpy.typing as npt

QUANTILE_LEVELS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
"""Where :func:`divergence_summary` puts the KL and Δp quantiles (every level llama.cpp reports)."""


class DivergenceSummary(NamedTuple):
    """The summary of :func:`divergence_summary`, in the order the command reports it.

    Means and quantiles are over the scored rows, in float64. The label
    fields are None without labels. Every ``*_stderr`` is the "±" of
    llama.cpp's ``--kl-divergence`` report, by its estimator (see
    :func:`divergence_summary`).
    """

    kl_mean: float
    kl_stderr: float
    kl_min: float
    kl_max: float
    kl_quantiles: np.ndarray
    quantile_levels: np.ndarray
    top1_agreement: float
    top1_agreement_stderr: float
    js_mean: float
    tv_mean: float
    max_abs_dp: float
    """``max |p_c - q_c|`` over every class of every row: not llama.cpp's "Maximum Δp" (that is ``dp_max``)."""
    n_scored: int
    """The rows every statistic is over (masked and ignored rows left out)."""
    ppl_ref: float | None = None
    ppl_ref_stderr: float | None = None
    ppl_cand: float | None = None
    ppl_cand_stderr: float | None = None
    ln_ppl_correlation: float | None = None
    ln_ppl_ratio: float | None = None
    ln_ppl_ratio_stderr: float | None = None
    ppl_ratio: float | None = None
    ppl_ratio_stderr: float | None = None
    ppl_diff: float | None = None
    ppl_diff_stderr: float | None = None
    dp_mean: float | None = None
    dp_stderr: float | None = None
    dp_min: float | None = None
    dp_max: float | None = None
    dp_rms: float | None = None
    dp_rms_stderr: float | None = None
    dp_quantiles: np.ndarray | None = None


def _quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile`` (linear) over ``values``, with ``inf`` kept exact rather than turned into NaN.

    NumPy interpolates ``a + (b - a) t``, which gives NaN for ``inf - inf``
    and for ``(inf - a) * 0``; here a level whose interpolation touches an
    ``inf`` row is ``inf`` (exactly ``a`` when it lands on a finite ``a``).
    A NaN row makes every level NaN, as in NumPy.
    """
    if values.size == 0:
        return np.full(levels.shape, np.nan)
    with np.errstate(invalid="ignore"):
        result = np.quantile(values, levels)
    if np.isposinf(values).any() and not np.isnan(values).any():
        ordered = np.sort(values)
        position = (values.size - 1) * levels
        below = np.floor(position).astype(np.intp)
        above = np.minimum(below + 1, values.size - 1)
        lands = position == below
        infinite = np.where(lands, np.isposinf(ordered[below]), np.isposinf(ordered[above]))
        result = np.where(infinite, np.inf, np.where(lands, ordered[below], result))
    return result


def _mean(values: np.ndarray) -> float:
    return float(values.mean(dtype=np.float64)) if values.size else float("nan")


def _stderr(values: np.ndarray) -> float:
    """The standard error of the mean, ``s / sqrt(n)`` with ``s`` the sample deviation (n - 1).

    llama.cpp's ``sqrt((Σx²/n - x̄²) / (n - 1))`` is the same quantity; it is
    computed here in two passes, which cannot go negative under the root. An
    infinite mean has an unbounded error; fewer than two rows have none (NaN).
    """
    values = values.astype(np.float64, copy=False)
    if values.size < 2:
        return float("nan")
    mean = values.mean()
    if np.isinf(mean):
        return float("inf")
    with np.errstate(invalid="ignore"):
        return float(np.sqrt(np.mean((values - mean) ** 2) / (values.size - 1)))


def _extreme(values: np.ndarray, pick) -> float:
    return float(pick(values)) if values.size else float("nan")


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation (llama.cpp's Cor(ln PPL(Q), ln PPL(base)) over per-row NLLs); NaN when undefined."""
    if a.size < 2:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        da, db = a - a.mean(), b - b.mean()
        return float(np.sum(da * db) / np.sqrt(np.sum(da * da) * np.sum(db * db)))


def divergence_summary(rows: RowDivergence, quantile_levels: npt.ArrayLike = QUANTILE_LEVELS) -> DivergenceSummary:
    r"""The summary of per-row figures: means, standard error, maxima and quantiles over rows.

    .. math::
        \overline{\mathrm{KL}} = \frac1N \sum_n \mathrm{KL}_n, \quad
        \mathrm{stderr} = \frac{s}{\sqrt N},\; s^2 = \frac{1}{N-1}\sum_n (\mathrm{KL}_n - \overline{\mathrm{KL}})^2,
        \quad \mathrm{ppl\_ratio} = \exp\bigl(\overline{\mathrm{nll}}_{cand} - \overline{\mathrm{nll}}_{ref}\bigr)

    (the "±" llama.cpp's ``--kl-divergence`` prints is this standard error).
    Everything is computed in float64 over the whole per-row arrays, so the
    result depends only on the rows, not on how they were computed in blocks.
    Quantiles use NumPy's default linear method, which is llama.cpp's
    ``percentile``. Every figure is over the scored rows (``rows.scored``:
    kept by the mask and, with labels, not labelled with the ignore index);
    none is NaN when there are none. ``n_scored`` counts them.

    The other "±" are llama.cpp's too: ``top1_agreement_stderr`` is
    ``sqrt(a (1 - a) / (N - 1))``; ``ppl_*_stderr`` is ``PPL`` times the
    standard error of the mean NLL; ``ln_ppl_ratio_stderr`` is
    ``sqrt(s_Q² + s_base² - 2 cov)``, the standard error of the mean of
    ``nll_cand - nll_ref``; ``ppl_ratio_stderr`` is the ratio times that;
    ``ppl_diff_stderr`` is ``sqrt(u_Q² + u_base² - 2 PPL_Q PPL_base cov)``;
    ``dp_rms_stderr`` is ``½ / rms`` times the standard error of the mean
    of ``Δp²``. ``ln_ppl_correlation`` is Pearson's correlation of the
    per-row NLLs (llama.cpp's Cor(ln PPL(Q), ln PPL(base))). llama.cpp
    prints 0 for a ± over 10 rows or fewer and no final report under 100;
    these figures are computed from 2 rows on.

    Infinite KL rows are real (Q gives 0 to a class P does not) and stay so:
    ``kl_mean`` and ``kl_max`` are ``inf``, so is ``kl_stderr``, and the
    quantiles at and above the first infinite row are ``inf``. An infinite NLL
    makes its perplexity ``inf`` (and ``ppl_ratio`` NaN when both are). Rows
    that are NaN (``masked_rows="nan"``) make every mean, maximum and
    quantile they enter NaN, as NumPy does: a figure over fewer rows than
    given would be a different answer; ``top1_agreement`` counts them as
    disagreeing.

    Parameters
    ----------
    rows : RowDivergence
        From :func:`divergence_rows`, or :meth:`RowDivergence.concatenate` of blocks.
    quantile_levels : array_like of float
        In ``[0, 1]``; default :data:`QUANTILE_LEVELS`.

    Examples
    --------
    >>> rows = divergence_rows([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [[2.0, 1.0, 0.5], [0.0, 0.0, 0.0]])
    >>> summary = divergence_summary(rows, quantile_levels=[0.5])
    >>> round(summary.kl_mean, 6), round(summary.kl_stderr, 6), summary.kl_quantiles.round(6)
    (0.005874, 0.005874, array([0.005874]))
    >>> summary.top1_agreement
    1.0
    """
    levels = np.asarray(quantile_levels, dtype=np.float64).reshape(-1)
    if not ((levels >= 0) & (levels <= 1)).all():
        raise InputError(f"quantile levels must lie between 0 and 1, got {levels.tolist()}")
    kept = slice(None) if rows.scored is None else np.ravel(rows.scored)

    def scored(name: str) -> np.ndarray:
        return np.ravel(getattr(rows, name))[kept]

    kl = scored("kl").astype(np.float64)
    n = kl.size
    agreement = _mean(scored("top1_same"))
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement_stderr = float(np.sqrt(agreement * (1 - agreement) / (n - 1))) if n > 1 else float("nan")
    summary = DivergenceSummary(
        n_scored=n,
        kl_mean=_mean(kl),
        kl_stderr=_stderr(kl),
        kl_min=_extreme(kl, np.min),
        kl_max=_extreme(kl, np.max),
        kl_quantiles=_quantiles(kl, levels),
        quantile_levels=levels,
        top1_agreement=agreement,
        top1_agreement_stderr=agreement_stderr,
        js_mean=_mean(scored("js")),
        tv_mean=_mean(scored("tv")),
        max_abs_dp=_extreme(scored("row_max_abs_dp"), np.max),
    )
    if rows.labelled is None:
        return summary
    nll_ref, nll_cand = scored("nll_ref").astype(np.float64), scored("nll_cand").astype(np.float64)
    dp = scored("dp").astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ppl_ref, ppl_cand = float(np.exp(_mean(nll_ref))), float(np.exp(_mean(nll_cand)))
        ln_ratio = _mean(nll_cand) - _mean(nll_ref)
        # llama.cpp's ± of ln(PPL ratio), sqrt(s_Q² + s_base² - 2 cov), is the standard error of the mean of the
        # per-row differences; its ± of PPL(Q) - PPL(base) is that of PPL(Q) nll_Q - PPL(base) nll_base.
        ln_ratio_stderr = _stderr(nll_cand - nll_ref)
        squared = dp * dp
        rms = float(np.sqrt(_mean(squared)))
        return summary._replace(
            ppl_ref=ppl_ref,
            ppl_ref_stderr=ppl_ref * _stderr(nll_ref),
            ppl_cand=ppl_cand,
            ppl_cand_stderr=ppl_cand * _stderr(nll_cand),
            ln_ppl_correlation=_correlation(nll_cand, nll_ref),
            ln_ppl_ratio=ln_ratio,
            ln_ppl_ratio_stderr=ln_ratio_stderr,
            ppl_ratio=float(np.exp(ln_ratio)),
            ppl_ratio_stderr=float(np.exp(ln_ratio)) * ln_ratio_stderr,
            ppl_diff=ppl_cand - ppl_ref,
            ppl_diff_stderr=_stderr(ppl_cand * nll_cand - ppl_ref * nll_ref),
            dp_mean=_mean(dp),
            dp_stderr=_stderr(dp),
            dp_min=_extreme(dp, np.min),
            dp_max=_extreme(dp, np.max),
            dp_rms=rms,
            dp_rms_stderr=0.5 / rms * _stderr(squared) if rms > 0 else float("nan"),
            dp_quantiles=_quantiles(dp, levels),
        )


def divergence(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    quantile_levels: npt.ArrayLike = QUANTILE_LEVELS,
    **options,
) -> tuple[DivergenceSummary, RowDivergence]:
    """:func:`divergence_rows` and its :func:`divergence_summary` in one call (options as there).

    Examples
    --------
    >>> summary, rows = divergence([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]])
    >>> round(summary.kl_mean, 6), summary.top1_agreement
    (0.231059, 0.5)
    """
    rows = divergence_rows(reference, candidate, labels, **options)
    return divergence_summary(rows, quantile_levels), rows
