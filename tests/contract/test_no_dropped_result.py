"""Issue 11, no dropped result: every result name of every command survives every output format.

The matrix runs each command variant of the contract's "Result names" table
through the installed ``softmax`` and each output format, reads the output back
with a small parser per format, and compares every named result with an
independent NumPy reference. What each format must hold (the rule these tests pin):

- json / npz: every named array and scalar under its name (json's ``command``,
  ``version``, ``inputs``, ``gates`` and npz's ``metadata`` say what produced it).
- csv / tsv: a result with one name is today's table (header = class names when
  known). A result with several names is one tidy table with a header: a 1-D
  per-row (or per-temperature) array is a column under its name (``temperatures``
  is the column ``temperature``), a 2-D one is columns ``NAME_J`` (J a class name
  or an index), topk is ``rankR_index,rankR_prob[,rankR_name]`` for R = 1..k.
  Scalars come first, as a block of ``# name: value`` lines. A reduction (loss,
  topk with labels) writes its per-row arrays to csv, tsv and json only with
  ``--per-row``, which these variants pass (without it the summary alone is the
  result: tests/cli/test_summary_first.py).
- npy: the primary array; every other name is listed on one ``note:`` line on
  standard error that points to npz (nothing on stderr when nothing is dropped).
- safetensors (``-o``): every numeric array as a tensor under its name (scalars as
  0-d tensors); the class names as a JSON list under the metadata key ``classes``.
- parquet (``-o``): the csv/tsv tidy table as columns; scalars as schema metadata
  ``name -> value`` (text).
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from conftest import reference_log_softmax, reference_softmax, run

RNG = np.random.default_rng(1111)
N, C, K_TOP = 6, 3, 2
LOGITS = RNG.normal(size=(N, C)) * 2
LABELS = np.array([0, 2, 1, 0, 1, 2])
VECTOR = np.array([2.0, 1.0, 0.5])
TEMPERATURES = np.array([0.5, 1.0, 2.0])
CLASSES = ["a", "b", "c"]
Q = RNG.normal(size=(3, 2))
KEYS = RNG.normal(size=(4, 2))
VALUES = RNG.normal(size=(4, 2))
BINS = 15

SCALARS = {"accuracy", "top1_accuracy", "topk_accuracy", "fitted_temperature", "nll_before", "nll_after",
           "ece_before", "ece_after"}


# ---------------------------------------------------------------- independent references

def per_sample_nll(z, y, temperature=1.0):
    return -reference_log_softmax(z, temperature=temperature)[np.arange(len(y)), y]


def ece(p, y, bins=BINS):
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    bin_of = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # (lower, upper]
    total = 0.0
    for b in range(bins):
        inside = bin_of == b
        if inside.any():
            total += inside.mean() * abs((predicted[inside] == y[inside]).mean() - confidence[inside].mean())
    return total


def entropy(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def sweep(z, temperatures, labels=None):
    out = {"temperatures": temperatures}
    probs = [reference_softmax(z, temperature=t) for t in temperatures]
    if z.ndim == 1:
        out["probs"] = np.array(probs)
    out["entropy"] = np.array([np.mean(entropy(p)) for p in probs])
    out["max_prob"] = np.array([np.mean(p.max(axis=-1)) for p in probs])
    if labels is not None:
        out["nll"] = np.array([per_sample_nll(z, labels, t).mean() for t in temperatures])
        out["accuracy"] = np.array([np.mean(p.argmax(axis=1) == labels) for p in probs])
        out["ece"] = np.array([ece(p, labels) for p in probs])
    return out


def fit(z, y):
    optimize = pytest.importorskip("scipy.optimize")
    found = optimize.minimize_scalar(lambda log_t: per_sample_nll(z, y, math.exp(log_t)).mean(),
                                     bounds=(-5, 5), method="bounded", options={"xatol": 1e-12})
    t = math.exp(found.x)
    return {"fitted_temperature": t, "nll_before": per_sample_nll(z, y).mean(),
            "nll_after": per_sample_nll(z, y, t).mean(), "ece_before": ece(reference_softmax(z), y),
            "ece_after": ece(reference_softmax(z, temperature=t), y)}


def topk(z, k, labels=None, classes=None):
    p = reference_softmax(z)
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]  # ties to the lower index
    out = {"indices": order, "probs": np.take_along_axis(p, order, axis=1)}
    if classes is not None:
        out["names"] = np.array(classes)[order]
    if labels is not None:
        out["top1_accuracy"] = np.mean(order[:, 0] == labels)
        out["topk_accuracy"] = np.mean((order == labels[:, None]).any(axis=1))
    return out


def attention(weights_too):
    w = reference_softmax(Q @ KEYS.T / math.sqrt(Q.shape[1]))
    return {"output": w @ VALUES, **({"weights": w} if weights_too else {})}


def expected_results():
    p = reference_softmax(LOGITS)
    ps = per_sample_nll(LOGITS, LABELS)
    accuracy = np.mean(p.argmax(axis=1) == LABELS)
    onehot = np.eye(C)[LABELS]
    return {
        "probs": (["probs", "Z"], {"probs": p}),
        "probs --log": (["probs", "Z", "--log"], {"log_probs": reference_log_softmax(LOGITS)}),
        "loss": (["loss", "Z", "--labels", "Y", "--per-row"],
                 {"loss": ps.mean(), "per_sample": ps, "accuracy": accuracy}),
        "loss --reduction none": (["loss", "Z", "--labels", "Y", "--reduction", "none"],
                                  {"loss": ps, "accuracy": accuracy}),
        "grad": (["grad", "Z", "--labels", "Y"], {"grad": (p - onehot) / N}),
        "jacobian": (["jacobian", "Z"], {"jacobian": p[:, :, None] * np.eye(C) - p[:, :, None] * p[:, None, :]}),
        "temperature-sweep": (["temperature-sweep", "Z", "--temperatures", "0.5,1,2"], sweep(LOGITS, TEMPERATURES)),
        "temperature-sweep vector": (["temperature-sweep", "V", "--temperatures", "0.5,1,2"],
                                     sweep(VECTOR, TEMPERATURES)),
        "temperature-sweep labels": (["temperature-sweep", "Z", "--temperatures", "0.5,1,2", "--labels", "Y"],
                                     sweep(LOGITS, TEMPERATURES, LABELS)),
        "temperature-sweep fit": (["temperature-sweep", "Z", "--temperatures", "0.5,1,2", "--labels", "Y", "--fit"],
                                  lambda: {**sweep(LOGITS, TEMPERATURES, LABELS), **fit(LOGITS, LABELS)}),
        "topk": (["topk", "Z", "-k", str(K_TOP)], topk(LOGITS, K_TOP)),
        "topk labels classes": (["topk", "Z", "-k", str(K_TOP), "--labels", "Y", "--classes", ",".join(CLASSES),
                                 "--per-row"],
                                topk(LOGITS, K_TOP, LABELS, CLASSES)),
        "attention": (["attention", "QF", "KF", "VF"], attention(False)),
        "attention --weights": (["attention", "QF", "KF", "VF", "--weights"], attention(True)),
    }


VARIANTS = expected_results()
FORMATS = ["csv", "tsv", "json", "npy", "npz", "safetensors", "parquet"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("matrix")
    arrays = {"Z": LOGITS, "Y": LABELS, "V": VECTOR, "QF": Q, "KF": KEYS, "VF": VALUES}
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name.lower()}.npy"
        np.save(paths[name], array)
    return paths


# ---------------------------------------------------------------- one parser per format

def column_groups(header: list[str], columns: dict[str, list[str]], expected: dict) -> dict:
    """Named results from a tidy table's columns, by the naming rule of the module docstring."""
    found = {}
    for name, value in expected.items():
        if name in SCALARS and np.ndim(value) == 0:
            continue
        if name in ("indices", "probs", "names") and any(h.startswith("rank1_") for h in header):
            suffix = {"indices": "index", "probs": "prob", "names": "name"}[name]
            ranks = [h for h in header if h.startswith("rank") and h.endswith(f"_{suffix}")]
            if ranks:
                found[name] = np.column_stack([columns[h] for h in ranks])
            continue
        column = "temperature" if name == "temperatures" else name
        if column in columns:
            found[name] = np.array(columns[column])
            continue
        grouped = [h for h in header if h.startswith(f"{name}_")]
        if grouped:
            found[name] = np.column_stack([columns[h] for h in grouped])
    return found


def numeric(values: list[str]):
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return np.array(values)


def parse_delimited(text: str, sep: str, expected: dict) -> dict:
    lines = [line for line in text.splitlines() if line]
    scalars = {}
    while lines and lines[0].startswith("#"):
        name, _, value = lines.pop(0)[1:].partition(":")
        scalars[name.strip()] = float(value.strip())
    first = lines[0].split(sep)
    try:
        [float(v) for v in first]
        header = None
    except ValueError:
        header, lines = first, lines[1:]
    rows = [line.split(sep) for line in lines]
    if len(expected) == 1:  # today's table: the primary array alone
        (name, value), = expected.items()
        return {name: np.array([[float(v) for v in row] for row in rows]).reshape(np.shape(value)), **scalars}
    assert header is not None, f"a result with several names needs a header: {text!r}"
    columns = {h: numeric([row[j] for row in rows]) for j, h in enumerate(header)}
    return {**column_groups(header, columns, expected), **scalars}


def nulls_to_nan(value):
    """JSON writes nan and infinities as null; a nan stands for each in the comparison."""
    if isinstance(value, list):
        return [nulls_to_nan(v) for v in value]
    return np.nan if value is None else value


def parse(fmt: str, completed, out_path, expected: dict) -> dict:
    if fmt in ("csv", "tsv"):
        return parse_delimited(completed.stdout.decode(), "," if fmt == "csv" else "\t", expected)
    if fmt == "json":
        out = json.loads(completed.stdout)
        return {k: np.array(nulls_to_nan(val)) for k, val in out.items()
                if k not in ("classes", "rows", "command", "version", "inputs", "gates")}
    if fmt == "npz":
        with np.load(io.BytesIO(completed.stdout)) as archive:
            return {k: archive[k] for k in archive.files if k != "metadata"}
    if fmt == "npy":
        primary = next(iter(expected))
        return {primary: np.load(io.BytesIO(completed.stdout))}
    if fmt == "safetensors":
        from safetensors import safe_open

        with safe_open(str(out_path), framework="np") as f:
            found = {k: f.get_tensor(k) for k in f.keys()}
            metadata = f.metadata() or {}
        if "names" in expected and "classes" in metadata:
            found["names"] = np.array(json.loads(metadata["classes"]))[found["indices"]]
        return found
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out_path)
        metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        scalars = {k: float(v) for k, v in metadata.items() if k in expected}
        header = table.column_names
        if len(expected) == 1:
            (name, value), = expected.items()
            return {name: np.column_stack([table.column(h).to_numpy() for h in header]).reshape(np.shape(value))}
        columns = {h: numeric([str(v) for v in table.column(h).to_pylist()]) for h in header}
        return {**column_groups(header, columns, expected), **scalars}
    raise AssertionError(fmt)


# ---------------------------------------------------------------- the matrix

def assert_same(name, got, want):
    if np.asarray(want).dtype.kind in "US":
        assert np.asarray(got).astype(str).tolist() == np.asarray(want).tolist(), name
        return
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if want.ndim == 0:
        assert got.size == 1, (name, got.shape)
        got = got.reshape(())
    assert got.shape == want.shape, (name, got.shape, want.shape)
    loose = name in ("fitted_temperature", "nll_after", "ece_after")
    np.testing.assert_allclose(got, want, rtol=1e-5 if loose else 1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_result_is_recoverable(inputs, tmp_path, variant, fmt):
    args, expected = VARIANTS[variant]
    if callable(expected):  # the fit's reference needs scipy, skipped without it
        expected = expected()
    args = [inputs.get(a, a) for a in args]
    if fmt == "safetensors":
        pytest.importorskip("safetensors")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out_path = tmp_path / f"out.{fmt}"
    where = ["-o", out_path] if fmt in ("safetensors", "parquet") else ["-f", fmt]
    completed = run(*args, *where, text=False)
    stderr = completed.stderr.decode()
    assert completed.returncode == 0, stderr
    found = parse(fmt, completed, out_path, expected)
    dropped = [name for name in expected if name not in found]
    if fmt == "npy":
        notes = [line for line in stderr.splitlines() if line.startswith("note:")]
        if dropped:
            assert len(notes) == 1, f"-f npy must name on one note line what it leaves out: {stderr!r}"
            for name in dropped:
                assert name in notes[0].replace(",", " ").split(), (name, notes[0])
            assert "npz" in notes[0], notes[0]
        else:
            assert not notes, stderr
    else:
        assert not dropped, f"{variant} -f {fmt} lost {dropped}"
    for name, value in found.items():
        if name in expected:
            assert_same(name, value, expected[name])


# ---------------------------------------------------------------- the exact tidy headers the issue names

def test_temperature_sweep_csv_header_is_the_issue_s(inputs):
    completed = run("temperature-sweep", inputs["Z"], "--temperatures", "0.5,1,2", "--labels", inputs["Y"],
                    "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    # Issue 24 adds the other calibration figures and the reliability bins (15 columns each) after ece.
    bins = [f"{name}_{j}" for name in ("bin_lower", "bin_upper", "bin_count", "bin_confidence", "bin_accuracy")
            for j in range(15)]
    assert completed.stdout.splitlines()[0].split(",") == [
        "temperature", "entropy", "max_prob", "nll", "accuracy", "ece", "ece_l2", "mce", "classwise_ece", "brier",
        *bins]


def test_temperature_sweep_fit_csv_begins_with_the_fit_as_comments(inputs):
    completed = run("temperature-sweep", inputs["Z"], "--temperatures", "0.5,1,2", "--labels", inputs["Y"],
                    "--fit", "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    head = completed.stdout.splitlines()[:13]
    assert [line.partition(":")[0] for line in head] == [
        "# fitted_temperature", "# nll_before", "# nll_after", "# ece_before", "# ece_after", "# ece_l2_before",
        "# ece_l2_after", "# mce_before", "# mce_after", "# classwise_ece_before", "# classwise_ece_after",
        "# brier_before", "# brier_after"]


def test_topk_tsv_header_is_rank_major(inputs):
    completed = run("topk", inputs["Z"], "-k", "2", "--classes", ",".join(CLASSES), "-f", "tsv")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0].split("\t") == [
        "rank1_index", "rank1_prob", "rank1_name", "rank2_index", "rank2_prob", "rank2_name"]


def test_single_array_csv_is_unchanged(inputs):
    """A result with one name keeps today's CSV: no header without class names, no comment block."""
    completed = run("probs", inputs["Z"], "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    assert not any(line.startswith("#") for line in completed.stdout.splitlines())
    values = np.array([[float(v) for v in line.split(",")] for line in completed.stdout.splitlines()])
    np.testing.assert_allclose(values, reference_softmax(LOGITS), rtol=1e-12)
