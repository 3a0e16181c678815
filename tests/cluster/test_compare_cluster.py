"""``compare --scheduler``: the in-process report, bit for bit, from lockstep units on a real LocalCluster.

The module's LocalCluster (2 worker processes) is reached by its tcp address
through Typer's CliRunner; one test runs the installed script with its own
``local:1``. The in-process ``compare`` is the reference on purpose (the core
is tested against independent references in tests/core/); one test also holds
the cluster's per-row KL to a float64 NumPy computation. ``SOFTMAX_UNIT_BYTES``
makes each small file several units, and the shards of the two sides are cut
at different rows, so units are cut at both sides' boundaries.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("distributed")


BATCH, SEQ, VOCAB = 3, 40, 29


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(batch, seq, vocab) reference and candidate logits, next-token ids with padding, an attention mask."""
    root = tmp_path_factory.mktemp("compare_cluster")
    rng = np.random.default_rng(21)
    ref = (rng.standard_normal((BATCH, SEQ, VOCAB)) * 2).astype(np.float32)
    cand = (ref + 0.2 * rng.standard_normal(ref.shape)).astype(np.float32)
    ids = rng.integers(0, VOCAB, (BATCH, SEQ))
    mask = np.ones((BATCH, SEQ), dtype=np.int64)
    mask[1, 30:] = 0  # right padding
    mask[2, :5] = 0  # left padding
    cand[1, 30:] = np.nan  # padded positions are never read
    ref[1, 30:] = np.nan
    ids[mask == 0] = -100
    np.save(root / "ref.npy", ref)
    np.save(root / "cand.npy", cand)
    np.save(root / "ids.npy", ids)
    np.save(root / "mask.npy", mask)
    flat_ref, flat_cand = ref.reshape(-1, VOCAB), cand.reshape(-1, VOCAB)
    np.save(root / "ref2d.npy", np.nan_to_num(flat_ref))
    np.save(root / "ref_finite.npy", np.nan_to_num(ref))
    np.save(root / "cand2d.npy", np.nan_to_num(flat_cand))
    np.save(root / "cand16.npy", np.nan_to_num(flat_cand).astype(np.float16))
    # The same rows as shards, cut at different rows on the two sides.
    for name, flat, cuts in (("ref_shards", np.nan_to_num(flat_ref), [17, 60, 61]),
                             ("cand_shards", np.nan_to_num(flat_cand), [40, 90])):
        (root / name).mkdir()
        for i, part in enumerate(np.split(flat, cuts)):
            np.save(root / name / f"part-{i:03d}.npy", part)
    return root


def _ok(completed):
    assert completed.returncode == 0, completed.stderr
    return completed


def _unit_of(rows: int) -> dict:
    """The environment that makes units of ``rows`` float32 rows."""
    return {"SOFTMAX_UNIT_BYTES": str(rows * VOCAB * 4)}


def _both(cli, cluster, *args, rows=7, in_process=None):
    """The in-process run and the cluster run of ``compare *args`` (``in_process``: other arguments there)."""
    here = cli("compare", *(in_process or args))
    there = cli("compare", *args, "--scheduler", cluster, env=_unit_of(rows))
    return here, there


def _npz(cli, cluster, tmp_path, *args, rows=7, in_process=None):
    """Every array of both runs' ``-f npz --per-row`` output."""
    here, there = _both(cli, cluster, *args, "--per-row", "-o", tmp_path / "there.npz", rows=rows,
                        in_process=[*(in_process or args), "--per-row", "-o", tmp_path / "here.npz"])
    _ok(here), _ok(there)
    return np.load(tmp_path / "here.npz"), np.load(tmp_path / "there.npz")


def _assert_identical(here, there, same_inputs=True):
    """Every array equal, bit for bit; the metadata too when both runs read the same files (it names them)."""
    assert sorted(here.files) == sorted(there.files)
    for name in here.files:
        if name == "metadata" and not same_inputs:
            continue
        assert here[name].dtype == there[name].dtype, name
        assert np.array_equal(here[name], there[name], equal_nan=here[name].dtype.kind == "f"), name


@pytest.mark.parametrize("rows", [1, 7, 40, 10_000])
def test_per_row_figures_are_bit_identical_for_any_unit_size(cli, cluster, data, tmp_path, rows):
    here, there = _npz(cli, cluster, tmp_path, data / "ref2d.npy", data / "cand2d.npy", "--labels",
                       data / "ids.npy", rows=rows)
    _assert_identical(here, there)
    assert there["kl"].shape == (BATCH * SEQ,)


def test_the_per_row_kl_is_the_float64_one(cli, cluster, data, tmp_path):
    _, there = _npz(cli, cluster, tmp_path, data / "ref2d.npy", data / "cand2d.npy")
    p = np.load(data / "ref2d.npy").astype(np.float64)
    q = np.load(data / "cand2d.npy").astype(np.float64)
    log_p = p - p.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    log_q = q - q.max(1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(1, keepdims=True))
    expected = (np.exp(log_p) * (log_p - log_q)).sum(1)
    np.testing.assert_allclose(there["kl"], expected, rtol=1e-4, atol=1e-7)


def test_a_float16_candidate_against_float32(cli, cluster, data, tmp_path):
    here, there = _npz(cli, cluster, tmp_path, data / "ref2d.npy", data / "cand16.npy", rows=5,
                       in_process=[data / "ref2d.npy", data / "cand16.npy"])
    _assert_identical(here, there)


def test_shards_cut_at_other_rows_equal_the_joined_files(cli, cluster, data, tmp_path):
    here, there = _npz(cli, cluster, tmp_path, data / "ref_shards", data / "cand_shards", "--labels",
                       data / "ids.npy", rows=11,
                       in_process=[data / "ref2d.npy", data / "cand2d.npy", "--labels", data / "ids.npy"])
    _assert_identical(here, there, same_inputs=False)


def test_a_zarr_candidate_with_chunks_across_sequences(cli, cluster, data, tmp_path):
    zarr = pytest.importorskip("zarr")
    cand = np.load(data / "cand.npy")
    array = zarr.create_array(store=str(tmp_path / "cand.zarr"), shape=cand.shape, chunks=(2, SEQ, VOCAB),
                              dtype="float32")
    array[:] = cand
    # Units of 13 rows cut the (batch, seq) rows inside a sequence.
    here, there = _npz(cli, cluster, tmp_path, data / "ref.npy", tmp_path / "cand.zarr", "--mask",
                       data / "mask.npy", rows=13, in_process=[data / "ref.npy", data / "cand.npy", "--mask",
                                                                  data / "mask.npy"])
    _assert_identical(here, there, same_inputs=False)


@pytest.mark.parametrize("options", [
    ["--labels", "{ids}", "--mask", "{mask}"],
    ["--labels", "{ids}", "--mask", "{mask}", "--shift-labels", "--per-sequence"],
    ["--labels", "{ids}", "--ignore-index", "-100", "--per-sequence", "-t", "1.7"],
])
def test_labels_mask_shift_and_sequences_give_the_same_json(cli, cluster, data, options):
    options = [o.format(ids=data / "ids.npy", mask=data / "mask.npy") for o in options]
    here, there = _both(cli, cluster, data / "ref.npy", data / "cand.npy", *options, "--per-row", "-f", "json")
    assert _ok(there).stdout == _ok(here).stdout
    figures = json.loads(there.stdout)
    assert figures["n_scored"] < BATCH * SEQ  # the padding was left out
    assert np.isfinite(figures["kl_mean"]) and np.isfinite(figures["ppl_ref"])


def test_a_failed_gate_exits_1_after_the_same_report(cli, cluster, data, tmp_path):
    args = [data / "ref2d.npy", data / "cand2d.npy", "--max-kl", "0.001", "--min-agreement", "0.5", "-f", "csv"]
    here, there = _both(cli, cluster, *args)
    assert (here.returncode, there.returncode) == (1, 1), there.stderr
    assert there.stdout == here.stdout
    assert there.stderr.splitlines()[-1] == here.stderr.splitlines()[-1]
    assert there.stderr.splitlines()[-1].startswith("gate failed: mean KL")


def test_the_output_file_and_report_are_the_in_process_ones(cli, cluster, data, tmp_path):
    common = ["--labels", data / "ids.npy", "--max-ppl-ratio", "2", "-f", "json"]
    _ok(cli("compare", data / "ref2d.npy", data / "cand2d.npy", *common, "-o", tmp_path / "here.json",
            "--report", f"markdown={tmp_path / 'here.md'}"))
    _ok(cli("compare", data / "ref2d.npy", data / "cand2d.npy", *common, "-o", tmp_path / "there.json",
            "--report", f"markdown={tmp_path / 'there.md'}", "--scheduler", cluster, env=_unit_of(9)))
    assert (tmp_path / "there.json").read_bytes() == (tmp_path / "here.json").read_bytes()
    assert (tmp_path / "there.md").read_bytes() == (tmp_path / "here.md").read_bytes()


def _one_error(completed, *fragments):
    assert completed.returncode == 2, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if not line.startswith("note: the Dask dashboard")]
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_nan_in_a_later_unit_names_the_candidate_and_its_row(cli, cluster, data, tmp_path):
    cand = np.load(data / "cand2d.npy")
    cand[97, 3] = np.nan
    np.save(tmp_path / "bad.npy", cand)
    here, there = _both(cli, cluster, data / "ref2d.npy", tmp_path / "bad.npy", "-o", tmp_path / "out.json")
    assert _one_error(there, "bad.npy", "row 97") == _one_error(here)
    assert not (tmp_path / "out.json").exists()


def test_a_bad_label_names_the_labels_as_in_process(cli, cluster, data, tmp_path):
    ids = np.load(data / "ids.npy")
    ids[2, 7] = VOCAB
    np.save(tmp_path / "bad_ids.npy", ids)
    here, there = _both(cli, cluster, data / "ref2d.npy", data / "cand2d.npy", "--labels", tmp_path / "bad_ids.npy")
    assert _one_error(there, "bad_ids.npy") == _one_error(here)


@pytest.mark.parametrize("candidate, fragment", [
    ("{tmp}/short.npy", "the two must have the same shape"),
    ("{tmp}/missing.npy", "missing.npy"),
    ("{tmp}/short_shards", "the two must have the same rows"),
])
def test_inputs_that_do_not_pair_up_are_one_line_before_connecting(cli, data, tmp_path, candidate, fragment):
    np.save(tmp_path / "short.npy", np.load(data / "ref2d.npy")[:-1])
    (tmp_path / "short_shards").mkdir()
    np.save(tmp_path / "short_shards" / "a.npy", np.load(data / "ref2d.npy")[:50])
    np.save(tmp_path / "short_shards" / "b.npy", np.load(data / "ref2d.npy")[50:-1])
    # Nothing listens at this address: reaching it would be another error.
    completed = cli("compare", data / "ref2d.npy", candidate.format(tmp=tmp_path), "--scheduler", "tcp://127.0.0.1:9")
    assert completed.stderr.count("\n") == 1, completed.stderr
    _one_error(completed, fragment)


def test_the_installed_script_starts_its_own_cluster(softmax, data):
    args = ["compare", data / "ref.npy", data / "cand.npy", "--labels", data / "ids.npy", "--mask", data / "mask.npy",
            "-f", "json"]
    here = _ok(softmax(*args))
    there = _ok(softmax(*args, "--scheduler", "local:1", env={"SOFTMAX_UNIT_BYTES": str(50 * VOCAB * 4)}))
    assert there.stdout == here.stdout
    assert there.stderr.startswith("note: the Dask dashboard is at http")


# ------------------------------------------------------------------ loss takes the same positions on a cluster


@pytest.mark.parametrize("options", [
    ["--mask", "{mask}"],
    ["--mask", "{mask}", "--shift-labels", "--per-sequence", "--per-row"],
    ["--shift-labels", "--reduction", "none"],
])
def test_loss_with_mask_and_shifted_labels_is_the_in_process_json(cli, cluster, data, options):
    options = [o.format(mask=data / "mask.npy") for o in options]
    args = ["loss", data / "ref.npy", "--labels", data / "ids.npy", *options, "-f", "json"]
    if "--mask" not in options:  # without a mask the NaN of the padding would be read
        args[1] = data / "ref_finite.npy"
    here = _ok(cli(*args))
    there = _ok(cli(*args, "--scheduler", cluster, env=_unit_of(9)))
    assert there.stdout == here.stdout


def test_probabilities_with_from_probs_and_a_sequence_gate(cli, cluster, data, tmp_path):
    for name in ("ref2d", "cand2d"):
        logits = np.load(data / f"{name}.npy").astype(np.float64)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        np.save(tmp_path / f"{name}_p.npy", (probs / probs.sum(1, keepdims=True)).reshape(BATCH, SEQ, VOCAB))
    args = [tmp_path / "ref2d_p.npy", tmp_path / "cand2d_p.npy", "--from-probs", "--max-seq-kl", "1e-6", "-f", "json"]
    here, there = _both(cli, cluster, *args)
    assert (here.returncode, there.returncode) == (1, 1), there.stderr
    assert there.stdout == here.stdout
    assert there.stderr.splitlines()[-1] == here.stderr.splitlines()[-1]
    assert "--max-seq-kl" in there.stderr.splitlines()[-1]


@pytest.mark.parametrize("command", ["compare", "loss", "grad", "probs", "probs --log", "topk",
                                     "temperature-sweep"])
def test_probabilities_given_as_logits_are_refused_as_in_process_before_connecting(cli, data, tmp_path, command):
    """Every command on the cluster refuses probability-shaped logits as it does in process (probs, grad, topk
    and temperature-sweep gave a confident result and exit 0)."""
    logits = np.load(data / "ref2d.npy").astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    np.save(tmp_path / "probs.npy", probs / probs.sum(1, keepdims=True))
    labels = ["--labels", data / "ids.npy"] if command in ("loss", "grad", "topk", "temperature-sweep") else []
    args = ([command, data / "ref2d.npy", tmp_path / "probs.npy"] if command == "compare"
            else [*command.split(), tmp_path / "probs.npy", *labels])
    # A cluster writes arrays as .npy files: probs and grad send theirs to -o, in process too.
    fmt = ["-o", tmp_path / "out.npy"] if command.split()[0] in ("probs", "grad") else ["-f", "json"]
    here = cli(*args, *fmt)
    there = cli(*args, *fmt, "--scheduler", "tcp://127.0.0.1:9")  # nothing listens there
    # compare's other side is logits: it says the two differ in kind.
    said = "holds probabilities and" if command == "compare" else "look like probabilities"
    assert _one_error(there, said, "probs.npy") == _one_error(here)
    assert there.stderr.count("\n") == 1


def test_a_candidate_gone_after_planning_is_named_not_the_reference(cluster, data, tmp_path):
    """A file lost mid-run is retried, then reported naming the file that went (a unit reads two)."""
    import distributed

    from softmax_cli.cluster import Engine, divergence_rows, expand_sources
    from softmax_cli.errors import InputError

    gone = tmp_path / "gone.npy"
    gone.write_bytes((data / "cand2d.npy").read_bytes())
    reference, candidate = expand_sources([data / "ref2d.npy"]), expand_sources([gone])
    gone.unlink()
    with distributed.Client(cluster) as client:
        with pytest.raises(InputError) as raised:
            divergence_rows(Engine(client, retries=0), reference, candidate, None, None, 40 * VOCAB * 4)
    assert str(gone) in str(raised.value) and str(data / "ref2d.npy") not in str(raised.value)
    assert "cannot read it" in str(raised.value)
