"""`softmax compare` end to end, through the real entry point.

Expected values come from torch (``F.kl_div`` with ``log_target``), scipy
(``rel_entr``, ``jensenshannon``) and NumPy float64 formulas written here;
never from ``softmax_cli.core``.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, reference_softmax

SUMMARY = ["kl_mean", "kl_stderr", "kl_min", "kl_max", "kl_quantiles", "quantile_levels", "top1_agreement",
           "top1_agreement_stderr", "js_mean", "tv_mean", "max_abs_dp", "n_scored"]
LABEL_SUMMARY = ["ppl_ref", "ppl_ref_stderr", "ppl_cand", "ppl_cand_stderr", "ln_ppl_correlation", "ln_ppl_ratio",
                 "ln_ppl_ratio_stderr", "ppl_ratio", "ppl_ratio_stderr", "ppl_diff", "ppl_diff_stderr", "dp_mean",
                 "dp_stderr", "dp_min", "dp_max", "dp_rms", "dp_rms_stderr", "dp_quantiles"]
PER_ROW = ["kl", "js", "tv", "row_max_abs_dp", "top1_same"]
LABEL_PER_ROW = ["nll_ref", "nll_cand", "dp", "scored"]
# What produced the result, after its figures (docs/ci.md); "gates" only when a gate was given.
PROVENANCE = ["command", "version", "inputs"]
LEVELS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]


def loads(completed) -> dict:
    assert completed.returncode == 0, (completed.returncode, completed.stderr)
    assert "Traceback" not in completed.stderr
    return json.loads(completed.stdout)


def as_float(values) -> np.ndarray:
    """A JSON list with null (inf, -inf or NaN) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def pair_rows(rng, n=12, c=6):
    """Finite logits and a candidate perturbed from them, plus an identical and a saturated row."""
    a = rng.normal(size=(n, c)) * 2
    b = a + rng.normal(size=(n, c)) * 0.3
    b[0] = a[0]                                           # identical: exactly 0
    a[1], b[1] = [1e4, 0, 0, 0, 0, 0], [0, 1e4, 0, 0, 0, 0]  # saturated: KL 1e4
    return a, b


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(14)
    a, b = pair_rows(rng)
    y = rng.integers(0, a.shape[1], a.shape[0])
    y[3] = -100
    for name, value in (("a", a), ("b", b), ("y", y)):
        np.save(tmp_path / f"{name}.npy", value)
    return tmp_path, a, b, y


def test_per_row_figures_match_torch_and_scipy(softmax, pair):
    torch = pytest.importorskip("torch")
    special = pytest.importorskip("scipy.special")
    distance = pytest.importorskip("scipy.spatial.distance")
    folder, a, b, y = pair
    out = loads(softmax("compare", folder / "a.npy", folder / "b.npy", "--labels", folder / "y.npy", "-f", "json",
                        "--per-row"))
    kept = y != -100  # the row labelled -100 is not scored: 0 in every figure, as torch's ignored rows
    assert out["scored"] == kept.tolist()
    log_p, log_q = torch.from_numpy(reference_log_softmax(a)), torch.from_numpy(reference_log_softmax(b))
    kl = torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(out["kl"], np.where(kept, kl, 0), rtol=1e-9, atol=1e-15)
    assert out["kl"][0] == 0 and out["kl"][1] == pytest.approx(1e4)
    p, q = reference_softmax(a), reference_softmax(b)
    # scipy's jensenshannon is the square root of the divergence (natural log by default).
    js = np.array([distance.jensenshannon(p_row, q_row) ** 2 for p_row, q_row in zip(p, q)])
    np.testing.assert_allclose(out["js"], np.where(kept, js, 0), rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(out["kl"][2:], np.where(kept, special.rel_entr(p, q).sum(-1), 0)[2:], rtol=1e-7)
    np.testing.assert_allclose(out["tv"], np.where(kept, 0.5 * np.abs(p - q).sum(-1), 0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out["row_max_abs_dp"], np.where(kept, np.abs(p - q).max(-1), 0), rtol=1e-9,
                               atol=1e-15)
    assert out["top1_same"] == ((a.argmax(-1) == b.argmax(-1)) & kept).tolist()
    rows = np.arange(len(y))
    safe = np.where(kept, y, 0)
    np.testing.assert_allclose(out["nll_ref"], np.where(kept, -reference_log_softmax(a)[rows, safe], 0), rtol=1e-12)
    np.testing.assert_allclose(out["nll_cand"], np.where(kept, -reference_log_softmax(b)[rows, safe], 0),
                               rtol=1e-12)
    np.testing.assert_allclose(out["dp"], np.where(kept, q[rows, safe] - p[rows, safe], 0), rtol=1e-9, atol=1e-15)


def test_summary_matches_numpy(softmax, pair):
    folder, a, b, y = pair
    a, b = a[2:], b[2:]  # finite, unsaturated rows
    y = y[2:]
    for name, value in (("a", a), ("b", b), ("y", y)):
        np.save(folder / f"{name}.npy", value)
    out = loads(softmax("compare", folder / "a.npy", folder / "b.npy", "--labels", folder / "y.npy", "-f", "json"))
    assert list(out) == SUMMARY + LABEL_SUMMARY + PROVENANCE  # summary first, per-row only on request
    kept = y != -100  # every statistic is over the scored rows only
    assert out["n_scored"] == kept.sum()
    a, b = a[kept], b[kept]
    p, q, log_p, log_q = reference_softmax(a), reference_softmax(b), reference_log_softmax(a), reference_log_softmax(b)
    kl = (p * (log_p - log_q)).sum(-1)
    assert out["kl_mean"] == pytest.approx(kl.mean(), rel=1e-9)
    assert out["kl_stderr"] == pytest.approx(kl.std(ddof=1) / np.sqrt(len(kl)), rel=1e-7)
    assert out["kl_max"] == pytest.approx(kl.max(), rel=1e-9)
    np.testing.assert_allclose(out["kl_quantiles"], np.quantile(kl, LEVELS), rtol=1e-8)
    assert out["quantile_levels"] == LEVELS
    assert out["top1_agreement"] == np.mean(a.argmax(-1) == b.argmax(-1))
    m = (p + q) / 2
    js = 0.5 * (p * np.log(p / m)).sum(-1) + 0.5 * (q * np.log(q / m)).sum(-1)
    assert out["js_mean"] == pytest.approx(js.mean(), rel=1e-7)
    assert out["tv_mean"] == pytest.approx(0.5 * np.abs(p - q).sum(-1).mean(), rel=1e-9)
    assert out["max_abs_dp"] == pytest.approx(np.abs(p - q).max(), rel=1e-9)
    rows = np.arange(len(a))
    y = y[kept]
    nll_ref, nll_cand = -log_p[rows, y], -log_q[rows, y]
    assert out["ppl_ref"] == pytest.approx(np.exp(nll_ref.mean()), rel=1e-12)
    assert out["ppl_cand"] == pytest.approx(np.exp(nll_cand.mean()), rel=1e-12)
    assert out["ppl_ratio"] == pytest.approx(np.exp(nll_cand.mean() - nll_ref.mean()), rel=1e-12)
    dp = q[rows, y] - p[rows, y]
    assert out["dp_mean"] == pytest.approx(dp.mean(), rel=1e-9)
    assert out["dp_rms"] == pytest.approx(np.sqrt((dp**2).mean()), rel=1e-9)
    np.testing.assert_allclose(out["dp_quantiles"], np.quantile(dp, LEVELS), rtol=1e-8, atol=1e-15)


def test_minus_inf_on_either_side(softmax, tmp_path):
    special = pytest.importorskip("scipy.special")
    distance = pytest.importorskip("scipy.spatial.distance")
    inf = np.inf
    a = np.array([[1.0, -inf, 0.5, 2.0], [1.0, 0.0, 0.5, 2.0], [-inf, 0.0, 0.5, 2.0], [0.3, -inf, -inf, 1.0]])
    b = np.array([[1.5, 0.0, 0.5, 2.0], [1.0, -inf, 0.5, 2.0], [-inf, 0.2, 0.5, 1.0], [0.3, -inf, -inf, 1.0]])
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = loads(softmax("compare", tmp_path / "a.npy", tmp_path / "b.npy", "-f", "json", "--per-row"))
    p, q = reference_softmax(a), reference_softmax(b)  # exact zeros where the logits are -inf
    kl = special.rel_entr(p, q).sum(-1)
    assert np.isinf(kl[1])  # Q gives 0 to a class P does not
    np.testing.assert_allclose(as_float(out["kl"]), np.where(np.isinf(kl), np.nan, kl), rtol=1e-9, atol=1e-15)
    assert out["kl"][3] == 0  # the same -inf classes on both sides
    js = np.array([distance.jensenshannon(p_row, q_row) ** 2 for p_row, q_row in zip(p, q)])
    np.testing.assert_allclose(out["js"], js, rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(out["tv"], 0.5 * np.abs(p - q).sum(-1), rtol=1e-9, atol=1e-15)
    assert out["kl_mean"] is None and out["kl_max"] is None  # inf is null in JSON


def test_identical_inputs_give_exactly_zero(softmax, pair):
    folder, a, _, _ = pair
    np.save(folder / "copy.npy", a)
    out = loads(softmax("compare", folder / "a.npy", folder / "copy.npy", "-f", "json", "--per-row"))
    for name in ("kl", "js", "tv", "row_max_abs_dp"):
        assert out[name] == [0.0] * len(a), name
    assert out["kl_mean"] == out["kl_max"] == out["js_mean"] == out["max_abs_dp"] == 0.0
    assert out["top1_agreement"] == 1.0


def test_from_probs_with_zeros_is_exact(softmax, tmp_path):
    special = pytest.importorskip("scipy.special")
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    q = np.array([[0.25, 0.5, 0.25], [0.2, 0.3, 0.5], [0.5, 0.0, 0.5]])
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    out = loads(softmax("compare", tmp_path / "p.npy", tmp_path / "q.npy", "--from-probs", "-f", "json", "--per-row"))
    np.testing.assert_allclose(out["kl"], special.rel_entr(p, q).sum(-1), rtol=1e-12, atol=1e-300)
    assert out["kl"][1] == 0


def test_temperature_applies_to_both_and_axis_picks_the_classes(softmax, pair):
    folder, a, b, _ = pair
    a, b = a[2:], b[2:]
    np.save(folder / "a.npy", a.T.copy())  # classes along axis 0
    np.save(folder / "b.npy", b.T.copy())
    out = loads(softmax("compare", folder / "a.npy", folder / "b.npy", "--axis", "0", "-t", "2", "-f", "json",
                        "--per-row"))
    log_p, log_q = reference_log_softmax(a, temperature=2), reference_log_softmax(b, temperature=2)
    np.testing.assert_allclose(out["kl"], (np.exp(log_p) * (log_p - log_q)).sum(-1), rtol=1e-9)


def test_same_file_twice_is_a_warning(softmax, pair):
    folder = pair[0]
    completed = softmax("compare", folder / "a.npy", folder / "a.npy", "-f", "json")
    assert loads(completed)["kl_mean"] == 0.0
    warnings = [line for line in completed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "same file" in warnings[0]


@pytest.mark.parametrize("dtypes", [("float32", "float16"), ("float16", "float32"), ("float32", "float32")])
def test_float16_and_float32_inputs(softmax, tmp_path, dtypes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(40, 50)) * 3).astype(dtypes[0])
    b = (a.astype(np.float64) + rng.normal(size=a.shape) * 0.05).astype(dtypes[1])
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = loads(softmax("compare", tmp_path / "a.npy", tmp_path / "b.npy", "-f", "json", "--per-row"))
    # The wider dtype is float32 here: computed in float32, against float64 on the same values.
    log_p = torch.from_numpy(reference_log_softmax(a.astype(np.float64)))
    log_q = torch.from_numpy(reference_log_softmax(b.astype(np.float64)))
    kl = torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(out["kl"], kl, rtol=2e-3, atol=1e-7)
    assert out["kl_mean"] == pytest.approx(kl.mean(), rel=1e-3)


def test_number_arguments_and_stdin(softmax, tmp_path):
    a = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    b = np.array([[2.0, 1.0, 0.5], [0.0, 1.0, 3.0]])
    typed = loads(softmax("compare", "2 1 0; 0 1 3", "2 1 .5; 0 1 3", "-f", "json", "--per-row"))
    expected = (reference_softmax(a) * (reference_log_softmax(a) - reference_log_softmax(b))).sum(-1)
    np.testing.assert_allclose(typed["kl"], expected, rtol=1e-12, atol=1e-300)
    np.save(tmp_path / "b.npy", b)
    buffer = io.BytesIO()
    np.save(buffer, a)
    piped = loads(softmax("compare", "-", tmp_path / "b.npy", "-f", "json", "--per-row", input=buffer.getvalue()))
    assert piped["kl"] == typed["kl"]
    assert_one_error_line(softmax("compare", "-", "-", input=buffer.getvalue()), "standard input")


def test_shape_mismatch_is_one_error(softmax, tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 3)))
    np.save(tmp_path / "b.npy", np.zeros((5, 3)))
    assert_one_error_line(softmax("compare", tmp_path / "a.npy", tmp_path / "b.npy"), "a.npy", "b.npy",
                          "same shape")
    assert_one_error_line(softmax("compare", "1 2 3", "1 2"), "REFERENCE", "CANDIDATE", "same shape")


def test_json_and_npz_hold_every_name(softmax, pair):
    folder = pair[0]
    args = ["compare", folder / "a.npy", folder / "b.npy", "--labels", folder / "y.npy"]
    out = loads(softmax(*args, "-f", "json", "--per-row"))
    assert list(out) == SUMMARY + LABEL_SUMMARY + PER_ROW + LABEL_PER_ROW + PROVENANCE
    completed = softmax(*args, "-f", "npz", text=False)
    assert completed.returncode == 0, completed.stderr
    with np.load(io.BytesIO(completed.stdout)) as archive:
        assert archive.files == SUMMARY + LABEL_SUMMARY + PER_ROW + LABEL_PER_ROW + ["metadata"]
        assert archive["kl"].shape == (12,) and archive["kl_mean"].shape == ()
        assert archive["top1_same"].dtype == bool


@pytest.mark.parametrize("fmt", ["json", "csv", "tsv"])
def test_per_row_figures_are_never_silently_dropped(softmax, pair, fmt):
    folder = pair[0]
    completed = softmax("compare", folder / "a.npy", folder / "b.npy", "-f", fmt)
    assert completed.returncode == 0, completed.stderr
    notes = [line for line in completed.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "--per-row" in notes[0] and "npz" in notes[0], completed.stderr
    with_rows = softmax("compare", folder / "a.npy", folder / "b.npy", "-f", fmt, "--per-row")
    assert "note: the per-row" not in with_rows.stderr


def test_csv_per_row_is_one_line_per_compared_row(softmax, pair):
    pytest.importorskip("softmax_cli.tidy")  # CSV as a tidy table under leading '# name: value' lines (issue 22)
    folder, a, b, _ = pair
    completed = softmax("compare", folder / "a.npy", folder / "b.npy", "--labels", folder / "y.npy", "-f", "csv",
                        "--per-row")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    header = next(n for n, line in enumerate(lines) if not line.startswith("#"))  # the summary comes first
    assert lines[header].split(",") == PER_ROW + LABEL_PER_ROW
    table = [line.split(",") for line in lines[header + 1:]]
    assert len(table) == len(a)
    out = loads(softmax("compare", folder / "a.npy", folder / "b.npy", "--labels", folder / "y.npy", "-f", "json",
                        "--per-row"))
    assert [float(row[0]) for row in table] == out["kl"]
    scalars = dict(line[2:].split(": ") for line in lines if line.startswith("# "))
    assert list(scalars) == [name for name in SUMMARY + LABEL_SUMMARY if not name.endswith(("quantiles", "levels"))]
    assert float(scalars["kl_mean"]) == out["kl_mean"]
    # The quantiles do not fit a table of rows: named on stderr, never dropped unseen.
    assert "kl_quantiles" in completed.stderr and "note: the per-row" not in completed.stderr


def test_parquet_and_safetensors_hold_the_per_row_figures(softmax, pair):
    parquet = pytest.importorskip("pyarrow.parquet")
    safetensors = pytest.importorskip("safetensors.numpy")
    folder = pair[0]
    args = ["compare", folder / "a.npy", folder / "b.npy", "--labels", folder / "y.npy"]
    out = loads(softmax(*args, "-f", "json", "--per-row"))
    completed = softmax(*args, "-o", folder / "out.parquet")
    assert completed.returncode == 0, completed.stderr
    table = parquet.read_table(folder / "out.parquet")
    assert table.schema.names == PER_ROW + LABEL_PER_ROW and table.num_rows == 12  # a line per compared row
    assert table.column("kl").to_pylist() == out["kl"]
    assert float(table.schema.metadata[b"kl_mean"]) == out["kl_mean"]
    assert "kl_quantiles" in completed.stderr  # named as left out, never dropped unseen
    assert softmax(*args, "-o", folder / "out.safetensors").returncode == 0
    tensors = safetensors.load_file(folder / "out.safetensors")
    assert set(tensors) == set(SUMMARY + LABEL_SUMMARY + PER_ROW + LABEL_PER_ROW)


# --------------------------------------------------------------------------- streaming


def block_env(rows: int, cols: int, itemsize: int = 4) -> dict:
    return {"SOFTMAX_BLOCK_BYTES": str(rows * cols * itemsize)}


def npz_members(completed) -> dict[str, np.ndarray]:
    assert completed.returncode == 0, completed.stderr
    with np.load(io.BytesIO(completed.stdout)) as archive:
        # What produced it differs (the path of a piped input is -); the figures may not.
        return {name: archive[name] for name in archive.files if name != "metadata"}


@pytest.mark.parametrize("rows_per_block", [1, 7, 10, 50])
def test_streaming_equals_in_memory_exactly(softmax, tmp_path, rows_per_block):
    rng = np.random.default_rng(5)
    a = (rng.normal(size=(50, 24)) * 3).astype(np.float32)
    a[4, :3] = -np.inf
    b = a.astype(np.float16)
    y = rng.integers(0, 24, 50)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "y.npy", y)
    buffer = io.BytesIO()
    np.save(buffer, a)
    labels = ["--labels", tmp_path / "y.npy"]
    # Standard input is read whole: the in-memory path.
    whole = npz_members(softmax("compare", "-", tmp_path / "b.npy", *labels, "-f", "npz", input=buffer.getvalue(),
                                text=False))
    streamed = npz_members(softmax("compare", tmp_path / "a.npy", tmp_path / "b.npy", *labels, "-f", "npz",
                                   "--threads", "2", env=block_env(rows_per_block, 24), text=False))
    assert list(streamed) == list(whole)
    for name in whole:
        assert streamed[name].dtype == whole[name].dtype, name
        np.testing.assert_array_equal(streamed[name], whole[name], err_msg=name)
        assert streamed[name].tobytes() == whole[name].tobytes(), name


def test_thread_count_and_block_size_change_no_bit(softmax, tmp_path):
    # Over a million elements per block: the core splits each block over the threads.
    rng = np.random.default_rng(6)
    a = (rng.normal(size=(4200, 256)) * 3).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a.astype(np.float16).astype(np.float32))
    args = ["compare", tmp_path / "a.npy", tmp_path / "b.npy", "-f", "npz"]
    one = npz_members(softmax(*args, "--threads", "1", text=False))
    two = npz_members(softmax(*args, "--threads", "2", env=block_env(1000, 256), text=False))
    for name in one:
        assert one[name].tobytes() == two[name].tobytes(), name


def test_streamed_errors_name_the_file_and_row(softmax, tmp_path):
    a = np.zeros((9, 4), dtype=np.float32)
    b = a.copy()
    b[7] = -np.inf
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    line = assert_one_error_line(softmax("compare", tmp_path / "a.npy", tmp_path / "b.npy", env=block_env(2, 4)),
                                 "b.npy", "--masked-rows")
    assert "7" in line


# --------------------------------------------------------------------------- gates


def test_gates_pass(softmax, pair):
    folder = pair[0]
    completed = softmax("compare", folder / "a.npy", folder / "a.npy", "--labels", folder / "y.npy", "-f", "json",
                        "--max-kl", "0", "--max-kl-quantile", "0.99:0", "--max-kl-quantile", "0.37:0",
                        "--min-agreement", "1", "--max-ppl-ratio", "1")
    assert completed.returncode == 0, completed.stderr
    assert "gate failed" not in completed.stderr


def test_failed_gate_exits_1_after_the_result(softmax, pair):
    folder, a, b, _ = pair
    completed = softmax("compare", folder / "a.npy", folder / "b.npy", "-f", "json", "--max-kl", "1e-3",
                        "--max-kl-quantile", "0.95:1e-3", "--min-agreement", "0.1")
    assert completed.returncode == 1
    out = json.loads(completed.stdout)  # the whole result came first
    assert list(out) == SUMMARY + PROVENANCE + ["gates"]
    assert [(gate["option"], gate["passed"]) for gate in out["gates"]] == [
        ("--max-kl", False), ("--max-kl-quantile", False), ("--min-agreement", True)]
    lines = [line for line in completed.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("gate failed: ")
    assert "--max-kl 0.001" in lines[0] and "--max-kl-quantile 0.95:0.001" in lines[0]
    assert "--min-agreement" not in lines[0]  # that gate passed


def test_kl_quantile_gate_at_any_level(softmax, pair):
    folder, a, b, _ = pair
    p, log_p, log_q = reference_softmax(a), reference_log_softmax(a), reference_log_softmax(b)
    kl = (np.where(p > 0, p * (log_p - log_q), 0)).sum(-1)
    level = 0.37  # not a reported level: computed the same way (linear, over rows)
    value = np.quantile(kl, level)
    args = ["compare", folder / "a.npy", folder / "b.npy", "-f", "json"]
    assert softmax(*args, "--max-kl-quantile", f"{level}:{value * 1.0001}").returncode == 0
    assert softmax(*args, "--max-kl-quantile", f"{level}:{value * 0.9999}").returncode == 1


@pytest.mark.parametrize("gate, fragment", [
    (["--min-agreement", "95"], "--min-agreement takes a fraction from 0 to 1"),
    (["--min-agreement", "nan"], "--min-agreement"),
    (["--max-kl", "-0.1"], ">= 0"),
    (["--max-kl", "nan"], "--max-kl"),
    (["--max-kl-quantile", "1.5:0.1"], "Q:X"),
    (["--max-kl-quantile", "0.99"], "0.99:0.05"),
    (["--max-kl-quantile", "0.99:-1"], "Q:X"),
    (["--max-ppl-ratio", "0", "--labels", "0"], "> 0"),
    (["--max-ppl-ratio", "1.1"], "needs --labels"),
])
def test_bad_gate_values_are_usage_errors(softmax, gate, fragment):
    assert_one_error_line(softmax("compare", "1 2 3", "1 2 3.5", *gate), fragment)


# --------------------------------------------------------------------------- the table


def test_histogram_counts_every_row_in_1_2_5_bins(softmax, tmp_path):
    rng = np.random.default_rng(9)
    a = rng.normal(size=(60, 5))
    b = a + rng.normal(size=a.shape) * np.logspace(-4, 0, 60)[:, None]
    b[:7] = a[:7]  # seven rows of exactly 0
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    completed = softmax("compare", tmp_path / "a.npy", tmp_path / "b.npy", "-f", "table", env={"COLUMNS": "80"})
    assert completed.returncode == 0, completed.stderr
    bins = {}
    for line in completed.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if line.startswith("│ ") and len(cells) == 3 and cells[1].isdigit():
            bins[cells[0]] = int(cells[1])
    assert bins.pop("0") == 7 and sum(bins.values()) == 53
    for label in bins:  # 1-2-5 edges: every label is exact
        low, high = (float(edge) for edge in label.split("–"))
        assert f"{low:.0e}"[0] in "125" and np.isclose(high / low, [2, 2.5, 10]).any(), label
    log_p, log_q = reference_log_softmax(a), reference_log_softmax(b)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(-1)[7:]
    for label, count in bins.items():
        low, high = (float(edge) for edge in label.split("–"))
        assert count == ((kl >= low) & (kl < high)).sum(), label


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_table_fits_the_terminal(softmax, columns):
    root = os.path.join(os.path.dirname(__file__), "..", "..", "sample_data")
    completed = softmax("compare", f"{root}/compare_ref.npy", f"{root}/compare_cand.npy", "--labels",
                        f"{root}/digits_val_labels.npy", "-f", "table", env={"COLUMNS": str(columns)})
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    text = completed.stdout
    for fragment in ("top-1 agreement", "100.00%", "KL (nats)", "± 2.616e-06", "99.9%", "median",
                     "perplexity ratio", "0.999776", "Δp = q[y] - p[y]", "KL per row", "1e-03–1e-02"):
        assert fragment in text, (fragment, text)
    assert "…" not in text  # nothing cut
    bins = [line for line in lines if line.startswith("│ 1e")]
    assert len(bins) == 10  # every bin drawn, each with a bar
    assert all(any(glyph in line for glyph in "█▉▊▋▌▍▎▏") for line in bins)
