r"""The summary of two models' per-row divergences: means, standard error, maxima, quantiles, perplexities.

:func:`divergence_summary` reduces a :class:`~softmax_cli.core.divergence.RowDivergence`
(from one call, or joined from streamed blocks) in float64 over the whole
per-row arrays, so the summary depends only on the rows' values, never on the
blocks they were computed in. :func:`divergence` is rows then summary in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import InputError
from .divergence import RowDivergence, divergence_rows

if TYPE_CHECKING:
    import numpy.typing as npt

QUANTILE_LEVELS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999)
"""Where :func:`divergence_summary` puts the KL and Δp quantiles (those llama.cpp reports, and more)."""


class DivergenceSummary(NamedTuple):
    """The summary of :func:`divergence_summary`, in the order the command reports it.

    Means and quantiles are over rows, in float64. The label fields are None
    without labels.
    """

    kl_mean: float
    kl_stderr: float
    kl_max: float
    kl_quantiles: np.ndarray
    quantile_levels: np.ndarray
    top1_agreement: float
    js_mean: float
    tv_mean: float
    max_abs_dp: float
    ppl_ref: float | None = None
    ppl_cand: float | None = None
    ppl_ratio: float | None = None
    dp_mean: float | None = None
    dp_rms: float | None = None
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


def divergence_summary(rows: RowDivergence, quantile_levels: npt.ArrayLike = QUANTILE_LEVELS) -> DivergenceSummary:
    r"""The summary of per-row figures: means, standard error, maxima and quantiles over rows.

    .. math::
        \overline{\mathrm{KL}} = \frac1N \sum_n \mathrm{KL}_n, \quad
        \mathrm{stderr} = \frac{s}{\sqrt N},\; s^2 = \frac{1}{N-1}\sum_n (\mathrm{KL}_n - \overline{\mathrm{KL}})^2,
        \quad \mathrm{ppl\_ratio} = \exp\bigl(\overline{\mathrm{nll}}_{cand} - \overline{\mathrm{nll}}_{ref}\bigr)

    (the "±" llama.cpp's ``--kl-divergence`` prints is this standard error).
    Everything is computed in float64 over the whole per-row arrays, so the
    result depends only on the rows, not on how they were computed in blocks.
    Quantiles use NumPy's default linear method. The label figures (``ppl_*``,
    ``dp_*``) are over the rows whose label is not the ignore index (NaN when
    there are none).

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
    kl = np.ravel(rows.kl).astype(np.float64)
    n = kl.size
    kl_mean = _mean(kl)
    with np.errstate(invalid="ignore"):
        # inf - inf inside the variance would be NaN; an infinite mean has an unbounded error.
        spread = float(kl.std(ddof=1) / np.sqrt(n)) if n > 1 and np.isfinite(kl_mean) else float("nan")
    if np.isposinf(kl_mean):
        spread = float("inf")
    abs_dp = np.ravel(rows.row_max_abs_dp)
    summary = DivergenceSummary(
        kl_mean=kl_mean,
        kl_stderr=spread,
        kl_max=float(kl.max()) if n else float("nan"),
        kl_quantiles=_quantiles(kl, levels),
        quantile_levels=levels,
        top1_agreement=_mean(np.ravel(rows.top1_same)),
        js_mean=_mean(np.ravel(rows.js)),
        tv_mean=_mean(np.ravel(rows.tv)),
        max_abs_dp=float(abs_dp.max()) if n else float("nan"),
    )
    if rows.labelled is None:
        return summary
    kept = np.ravel(rows.labelled)
    nll_ref = _mean(np.ravel(rows.nll_ref)[kept])
    nll_cand = _mean(np.ravel(rows.nll_cand)[kept])
    dp = np.ravel(rows.dp)[kept].astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return summary._replace(
            ppl_ref=float(np.exp(nll_ref)),
            ppl_cand=float(np.exp(nll_cand)),
            ppl_ratio=float(np.exp(nll_cand - nll_ref)),
            dp_mean=_mean(dp),
            dp_rms=float(np.sqrt(_mean(dp * dp))),
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
