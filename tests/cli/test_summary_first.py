"""Summary first, per-row on request: every reduction writes its scalar figures as the primary result in CSV,
TSV and JSON, and its per-row arrays only with --per-row (binary formats keep everything).

References are NumPy float64 (cross-entropy, top-k by a stable argsort) and scipy's entropy for KL.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import run

LOGITS = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0], [1.0, 0.0, 3.0], [0.2, 0.1, 0.0]])
LABELS = np.array([0, 1, 1, 2])


def log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


PER_SAMPLE = -log_softmax(LOGITS)[np.arange(len(LABELS)), LABELS]
ACCURACY = np.mean(LOGITS.argmax(-1) == LABELS)
TOP2 = np.argsort(-LOGITS, axis=-1, kind="stable")[:, :2]


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "z.npy", LOGITS)
    np.save(tmp_path / "y.npy", LABELS)
    np.save(tmp_path / "cand.npy", LOGITS + np.array([0.0, 0.1, -0.1]))
    return tmp_path


def softmax(*args, cwd):
    completed = run(*args, cwd=cwd)
    assert completed.returncode == 0, completed.stderr
    return completed


def summary_line(text: str, delimiter: str) -> dict[str, float]:
    """The first two lines: the header of named columns and its one row of figures; nothing else."""
    lines = text.splitlines()
    assert len(lines) == 2, text
    header, values = (line.split(delimiter) for line in lines)
    return dict(zip(header, map(float, values)))


# Each reduction: its arguments, its summary figures (independent references) and its per-row names.
CASES = {
    "loss": (["loss", "z.npy", "--labels", "y.npy"],
             {"loss": PER_SAMPLE.mean(), "accuracy": ACCURACY, "perplexity": np.exp(PER_SAMPLE.mean()),
              "bits_per_token": PER_SAMPLE.mean() / np.log(2)}, ["per_sample"]),
    "topk": (["topk", "z.npy", "--labels", "y.npy", "-k", "2"],
             {"top1_accuracy": np.mean(TOP2[:, 0] == LABELS), "topk_accuracy": np.mean((TOP2 == LABELS[:, None]).any(-1))},
             ["indices", "probs"]),
}


@pytest.mark.parametrize("delimiter,fmt", [(",", "csv"), ("\t", "tsv")])
@pytest.mark.parametrize("case", sorted(CASES))
def test_text_tables_are_one_line_of_named_figures(files, case, delimiter, fmt):
    args, figures, per_row = CASES[case]
    completed = softmax(*args, "-f", fmt, cwd=files)
    got = summary_line(completed.stdout, delimiter)
    assert list(got) == list(figures)
    for name, value in figures.items():
        assert got[name] == pytest.approx(value, rel=1e-12)
    assert "#" not in completed.stdout  # no comment lines: the figures are the table
    assert "--per-row" in completed.stderr and all(name in completed.stderr for name in per_row)


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_is_the_figures_at_top_level_and_per_row_only_on_request(files, case):
    args, figures, per_row = CASES[case]
    summary = json.loads(softmax(*args, "-f", "json", cwd=files).stdout)
    assert list(summary)[: len(figures)] == list(figures)
    assert not set(per_row) & set(summary)
    full = json.loads(softmax(*args, "-f", "json", "--per-row", cwd=files).stdout)
    assert list(full)[: len(figures)] == list(figures)  # the summary still comes first
    assert set(per_row) <= set(full)


def test_loss_per_row_in_csv_is_the_per_sample_column_under_the_figures(files):
    lines = softmax("loss", "z.npy", "--labels", "y.npy", "--per-row", cwd=files).stdout.splitlines()
    assert lines[0].startswith("# loss: ") and float(lines[0][8:]) == pytest.approx(PER_SAMPLE.mean(), rel=1e-12)
    assert lines[1].startswith("# accuracy: ") and float(lines[1][12:]) == ACCURACY
    assert lines[2].startswith("# perplexity: ") and lines[3].startswith("# bits_per_token: ")
    assert lines[4] == "per_sample"
    np.testing.assert_allclose([float(v) for v in lines[5:]], PER_SAMPLE, rtol=1e-12)


def test_reduction_none_writes_the_per_sample_loss_once(files):
    out = json.loads(softmax("loss", "z.npy", "--labels", "y.npy", "--reduction", "none", "-f", "json",
                             cwd=files).stdout)
    assert "per_sample" not in out
    np.testing.assert_allclose(out["loss"], PER_SAMPLE, rtol=1e-12)
    lines = softmax("loss", "z.npy", "--labels", "y.npy", "--reduction", "none", cwd=files).stdout.splitlines()
    assert lines[0] == f"# accuracy: {float(ACCURACY)!r}" and lines[1] == "loss"
    np.testing.assert_allclose([float(v) for v in lines[2:]], PER_SAMPLE, rtol=1e-12)
    archive = np.load(io.BytesIO(run("loss", "z.npy", "--labels", "y.npy", "--reduction", "none", "-f", "npz",
                                     cwd=files, text=False).stdout))
    assert [name for name in archive.files if name != "metadata"] == ["loss", "accuracy"]


def test_binary_formats_keep_the_per_row_arrays(files):
    archive = np.load(io.BytesIO(run("loss", "z.npy", "--labels", "y.npy", "-f", "npz", cwd=files,
                                     text=False).stdout))
    np.testing.assert_allclose(archive["per_sample"], PER_SAMPLE, rtol=1e-12)
    archive = np.load(io.BytesIO(run("topk", "z.npy", "--labels", "y.npy", "-k", "2", "-f", "npz", cwd=files,
                                     text=False).stdout))
    np.testing.assert_array_equal(archive["indices"], TOP2)


def test_compare_csv_is_one_line_with_the_quantiles_as_numbered_columns(files):
    from scipy.stats import entropy

    p, q = np.exp(log_softmax(LOGITS)), np.exp(log_softmax(np.load(files / "cand.npy")))
    kl = entropy(p, q, axis=-1)
    got = summary_line(softmax("compare", "z.npy", "cand.npy", "-f", "csv", cwd=files).stdout, ",")
    assert got["kl_mean"] == pytest.approx(kl.mean(), rel=1e-9)
    assert got["kl_max"] == pytest.approx(kl.max(), rel=1e-9)
    levels = [got[f"quantile_levels_{j}"] for j in range(9)]
    assert [got[f"kl_quantiles_{j}"] for j in range(9)] == pytest.approx(np.quantile(kl, levels), rel=1e-9)


def test_sweep_fit_figures_come_before_the_per_temperature_table(files):
    lines = softmax("temperature-sweep", "z.npy", "--labels", "y.npy", "--fit", "--temperatures", "1,2",
                    cwd=files).stdout.splitlines()
    figures = ["nll", "ece", "ece_l2", "mce", "classwise_ece", "brier"]
    names = [line[2:].split(":")[0] for line in lines[:13]]
    assert names == ["fitted_temperature"] + [f"{name}_{end}" for name in figures for end in ("before", "after")]
    assert float(lines[1].split(": ")[1]) == pytest.approx(PER_SAMPLE.mean(), rel=1e-12)  # nll at T = 1
    assert lines[13].startswith("temperature,entropy,max_prob,nll,accuracy,ece,ece_l2,mce,classwise_ece,brier,")
