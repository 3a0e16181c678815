"""An independent float64 reimplementation of llama.cpp's ``llama-perplexity --kl-divergence`` statistics.

Written from tools/perplexity/perplexity.cpp (``kl_divergence``, ``log_softmax``
and its ``mean_and_uncertainty``, ``covariance`` and ``percentile`` lambdas):
running sums over tokens, then llama.cpp's one-pass formulas. Q is the
candidate, base the reference; Δp = p_Q(token) - p_base(token). llama.cpp
prints 0 for a ± over 10 tokens or fewer; tests use more.
"""

from __future__ import annotations

import numpy as np


def log_softmax64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _mean_and_uncertainty(total: float, total2: float, count: int) -> tuple[float, float]:
    f = total / count
    df = total2 / count - f * f
    return f, (np.sqrt(df / (count - 1)) if df > 0 and count > 10 else 0.0)


def _covariance(a: float, b: float, ab: float, count: int) -> float:
    return (ab / count - (a / count) * (b / count)) / (count - 1) if count >= 10 else 0.0


def _percentile(values: np.ndarray, fraction: float) -> float:
    if fraction <= 0:
        return values[0]
    if fraction >= 1:
        return values[-1]
    p = fraction * (len(values) - 1)
    ip = int(p)
    p -= ip
    return (1 - p) * values[ip] + p * values[min(ip + 1, len(values) - 1)]


def llama_report(base_logits: np.ndarray, q_logits: np.ndarray, tokens: np.ndarray) -> dict[str, float]:
    """llama.cpp's report over the rows of 2-D logits scored against ``tokens`` (one per row)."""
    lp, lq = log_softmax64(base_logits), log_softmax64(q_logits)
    at = np.arange(len(tokens))
    nll, nll_base = -lq[at, tokens], -lp[at, tokens]
    kld = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    p_diff = np.exp(-nll) - np.exp(-nll_base)
    n = len(tokens)
    sums = {"nll": nll.sum(), "nll2": (nll * nll).sum(), "base": nll_base.sum(), "base2": (nll_base ** 2).sum(),
            "cross": (nll * nll_base).sum(), "kld": kld.sum(), "kld2": (kld * kld).sum(), "dp": p_diff.sum(),
            "dp2": (p_diff ** 2).sum(), "dp4": (p_diff ** 4).sum()}
    same_top = int((q_logits.argmax(-1) == base_logits.argmax(-1)).sum())
    log_ppl = _mean_and_uncertainty(sums["nll"], sums["nll2"], n)
    log_ppl_base = _mean_and_uncertainty(sums["base"], sums["base2"], n)
    ppl, ppl_base = np.exp(log_ppl[0]), np.exp(log_ppl_base[0])
    cov = _covariance(sums["nll"], sums["base"], sums["cross"], n)
    ratio_unc = np.sqrt(log_ppl[1] ** 2 + log_ppl_base[1] ** 2 - 2 * cov)
    ppl_unc, ppl_base_unc = ppl * log_ppl[1], ppl_base * log_ppl_base[1]
    kl = _mean_and_uncertainty(sums["kld"], sums["kld2"], n)
    mse = _mean_and_uncertainty(sums["dp2"], sums["dp4"], n)
    rms = np.sqrt(mse[0])
    dp = _mean_and_uncertainty(sums["dp"], sums["dp2"], n)
    same = same_top / n
    kld_sorted, dp_sorted = np.sort(kld), np.sort(p_diff)
    report = {
        "ppl_cand": ppl, "ppl_cand_stderr": ppl_unc, "ppl_ref": ppl_base, "ppl_ref_stderr": ppl_base_unc,
        "ln_ppl_correlation": cov / (log_ppl[1] * log_ppl_base[1]),
        "ln_ppl_ratio": log_ppl[0] - log_ppl_base[0], "ln_ppl_ratio_stderr": ratio_unc,
        "ppl_ratio": np.exp(log_ppl[0] - log_ppl_base[0]),
        "ppl_ratio_stderr": np.exp(log_ppl[0] - log_ppl_base[0]) * ratio_unc,
        "ppl_diff": ppl - ppl_base,
        "ppl_diff_stderr": np.sqrt(ppl_unc ** 2 + ppl_base_unc ** 2 - 2 * ppl * ppl_base * cov),
        "kl_mean": kl[0], "kl_stderr": kl[1], "kl_max": kld_sorted[-1], "kl_min": kld_sorted[0],
        "dp_mean": dp[0], "dp_stderr": dp[1], "dp_max": dp_sorted[-1], "dp_min": dp_sorted[0],
        "dp_rms": rms, "dp_rms_stderr": 0.5 / rms * mse[1],
        "top1_agreement": same, "top1_agreement_stderr": np.sqrt(same * (1 - same) / (n - 1)),
        "n_scored": n,
    }
    for level in (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999):
        report[f"kl_{level}"] = _percentile(kld_sorted, level)
        report[f"dp_{level}"] = _percentile(dp_sorted, level)
    # llama.cpp's median is the middle value (or the mean of the middle two): its percentile at 0.5.
    middle = n // 2
    median = (kld_sorted[middle] + kld_sorted[middle - 1]) / 2 if n % 2 == 0 else kld_sorted[middle]
    assert np.isclose(median, report["kl_0.5"], rtol=1e-12)
    return report


def report_of_summary(summary: dict) -> dict[str, float]:
    """The fields of ``compare``'s summary (JSON, or DivergenceSummary._asdict()) by :func:`llama_report`'s names."""
    fields = {name: summary[name] for name in summary if not isinstance(summary[name], (list, np.ndarray))}
    for level, kl, dp in zip(summary["quantile_levels"], summary["kl_quantiles"], summary["dp_quantiles"]):
        fields[f"kl_{level:g}"] = kl
        fields[f"dp_{level:g}"] = dp
    return fields
