"""``--mask`` on every row-wise command: a dropped position counts nowhere, whatever its logits hold.

The reference is each command run on the kept rows only (cut out with NumPy),
and torch for the loss; padding is filled with NaN, which no command accepts
as logits, so any read of it would be an error.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import assert_one_error_line, run

# What produced a result (its inputs' paths among them) differs between the runs compared here; the figures do not.
PROVENANCE = ("command", "version", "inputs", "gates")


def loads(completed) -> dict:
    """A JSON result's figures."""
    assert completed.returncode == 0, completed.stderr
    return {name: value for name, value in json.loads(completed.stdout).items() if name not in PROVENANCE}


@pytest.fixture
def padded(tmp_path):
    """A (2, 6, 5) batch with NaN padding, its kept rows as (n, 5), labels and attention_mask."""
    rng = np.random.default_rng(21)
    logits = rng.normal(size=(2, 6, 5)) * 2
    labels = rng.integers(0, 5, (2, 6))
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    kept = mask.astype(bool)
    cand = logits + rng.normal(size=logits.shape) * 0.3
    padded_logits, padded_cand = logits.copy(), cand.copy()
    padded_logits[~kept] = np.nan
    padded_cand[~kept] = np.nan
    files = {"logits": padded_logits, "cand": padded_cand, "labels": labels, "mask": mask,
             "kept_logits": logits[kept], "kept_cand": cand[kept], "kept_labels": labels[kept]}
    for name, value in files.items():
        np.save(tmp_path / f"{name}.npy", value)
    np.savez(tmp_path / "cand.npz", logits=padded_cand)
    return tmp_path, kept


def test_loss_matches_torch_on_the_kept_rows(padded):
    torch = pytest.importorskip("torch")
    folder, kept = padded
    out = loads(run("loss", "--per-row", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask", folder / "mask.npy",
                    "-f", "json"))
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(np.load(folder / "kept_logits.npy")),
                                                 torch.from_numpy(np.load(folder / "kept_labels.npy")))
    assert out["loss"] == pytest.approx(float(expected), rel=1e-12)
    assert np.array(out["per_sample"])[~kept].tolist() == [0.0] * int((~kept).sum())


def test_grad_is_zero_on_dropped_rows_and_torchs_elsewhere(padded):
    torch = pytest.importorskip("torch")
    folder, kept = padded
    out = loads(run("grad", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask", folder / "mask.npy",
                    "-f", "json"))
    x = torch.from_numpy(np.load(folder / "kept_logits.npy")).requires_grad_()
    torch.nn.functional.cross_entropy(x, torch.from_numpy(np.load(folder / "kept_labels.npy"))).backward()
    grad = np.array(out["grad"])
    np.testing.assert_allclose(grad[kept], x.grad.numpy(), rtol=1e-12, atol=1e-16)
    assert (grad[~kept] == 0).all()


def test_topk_marks_dropped_rows_and_counts_only_kept_ones(padded):
    folder, kept = padded
    out = loads(run("topk", "--per-row", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask", folder / "mask.npy",
                    "-k", "2", "-f", "json"))
    alone = loads(run("topk", "--per-row", folder / "kept_logits.npy", "--labels", folder / "kept_labels.npy", "-k", "2",
                      "-f", "json"))
    indices = np.array(out["indices"])
    np.testing.assert_array_equal(indices[kept], alone["indices"])
    assert (indices[~kept] == -1).all()
    assert (out["top1_accuracy"], out["topk_accuracy"]) == (alone["top1_accuracy"], alone["topk_accuracy"])


def test_temperature_sweep_is_over_the_kept_rows(padded):
    folder, _ = padded
    out = loads(run("temperature-sweep", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask",
                    folder / "mask.npy", "--temperatures", "0.5,1,2", "-f", "json"))
    alone = loads(run("temperature-sweep", folder / "kept_logits.npy", "--labels", folder / "kept_labels.npy",
                      "--temperatures", "0.5,1,2", "-f", "json"))
    assert out == alone


def test_compare_streamed_equals_in_memory_bit_for_bit(padded):
    folder, kept = padded
    options = ["--labels", folder / "labels.npy", "--mask", folder / "mask.npy", "-f", "json", "--per-row"]
    # Two .npy files stream in row blocks (a few rows each here); an .npz candidate is compared in memory.
    streamed = loads(run("compare", "--per-row", folder / "logits.npy", folder / "cand.npy", *options,
                         env={"SOFTMAX_BLOCK_BYTES": "64"}))
    in_memory = loads(run("compare", "--per-row", folder / "logits.npy", folder / "cand.npz", *options))
    assert streamed == in_memory
    assert streamed["n_scored"] == kept.sum() and streamed["scored"] == kept.reshape(-1).tolist()


def test_mask_values_other_than_0_and_1_are_refused(padded):
    folder, _ = padded
    completed = run("compare", "--per-row", folder / "logits.npy", folder / "cand.npy", "--mask", folder / "labels.npy")
    assert_one_error_line(completed, "is neither 1 (keep) nor 0 (drop)", "labels.npy")


def test_mask_key_alone_is_refused():
    assert_one_error_line(run("loss", "--per-row", "1 2", "--labels", "0", "--mask-key", "attention_mask"),
                          "--mask-key", "give --mask FILE too")


def test_loss_streamed_in_tiny_blocks_equals_in_memory(padded):
    folder, _ = padded
    np.savez(folder / "logits.npz", logits=np.load(folder / "logits.npy"))
    options = ["--labels", folder / "labels.npy", "--mask", folder / "mask.npy", "--shift-labels", "--per-sequence",
               "-f", "json"]
    streamed = loads(run("loss", "--per-row", folder / "logits.npy", *options, env={"SOFTMAX_BLOCK_BYTES": "64"}))
    in_memory = loads(run("loss", "--per-row", folder / "logits.npz", *options))
    assert streamed == in_memory


def test_topk_streamed_in_tiny_blocks_equals_in_memory(padded):
    folder, _ = padded
    np.savez(folder / "logits.npz", logits=np.load(folder / "logits.npy"))
    options = ["--labels", folder / "labels.npy", "--mask", folder / "mask.npy", "-k", "3", "-f", "json"]
    streamed = loads(run("topk", "--per-row", folder / "logits.npy", *options, env={"SOFTMAX_BLOCK_BYTES": "64"}))
    assert streamed == loads(run("topk", "--per-row", folder / "logits.npz", *options))


@pytest.mark.parametrize("output", ["-", "grad.npy"])  # to a pipe (checked first) and to a file
def test_grad_streamed_in_tiny_blocks_equals_in_memory(padded, output):
    folder, _ = padded
    np.savez(folder / "logits.npz", logits=np.load(folder / "logits.npy"))
    options = ["--labels", folder / "labels.npy", "--mask", folder / "mask.npy", "--shift-labels"]
    in_memory = run("grad", folder / "logits.npz", *options, "-f", "npy", "-o", folder / "memory.npy")
    assert in_memory.returncode == 0, in_memory.stderr
    target = ["-f", "npy"] if output == "-" else ["-o", folder / output]
    streamed = run("grad", folder / "logits.npy", *options, *target, env={"SOFTMAX_BLOCK_BYTES": "64"}, text=False)
    assert streamed.returncode == 0, streamed.stderr
    got = np.load(io.BytesIO(streamed.stdout)) if output == "-" else np.load(folder / output)
    np.testing.assert_array_equal(got, np.load(folder / "memory.npy"))


def test_a_mask_written_by_pandas_keeps_its_header_out_of_the_rows(padded):
    pd = pytest.importorskip("pandas")
    folder, kept = padded
    pd.DataFrame(np.load(folder / "mask.npy")).to_csv(folder / "mask.csv", index=False)  # header 0,1,...,5
    from_csv = run("loss", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask", folder / "mask.csv",
                   "-f", "json")
    assert "first row 0..5 of the mask read as its column names" in from_csv.stderr
    assert loads(from_csv) == loads(run("loss", folder / "kept_logits.npy", "--labels", folder / "kept_labels.npy",
                                        "-f", "json"))


@pytest.mark.parametrize("command", [["loss", "--labels", "{labels}"], ["topk", "--labels", "{labels}"],
                                     ["temperature-sweep", "--labels", "{labels}", "--fit"],
                                     ["compare", "{cand}", "--labels", "{labels}"]],
                         ids=["loss", "topk", "temperature-sweep", "compare"])
def test_a_mask_that_keeps_nothing_is_refused_not_scored_as_nan(padded, command):
    folder, _ = padded
    np.save(folder / "nothing.npy", np.zeros((2, 6), dtype=np.int64))
    args = [str(folder / f"{a[1:-1]}.npy") if a.startswith("{") else a for a in command]
    line = assert_one_error_line(run(command[0], folder / "logits.npy", *args[1:], "--mask", folder / "nothing.npy",
                                     "-f", "json"))
    assert "keeps no position" in line and str(folder / "nothing.npy") in line


def test_a_flat_mask_written_by_pandas_keeps_its_header_out_of_the_positions(padded):
    pd = pytest.importorskip("pandas")
    folder, kept = padded
    pd.Series(np.load(folder / "mask.npy").reshape(-1)).to_csv(folder / "mask.csv", index=False)  # header "0"
    from_csv = run("loss", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask", folder / "mask.csv",
                   "-f", "json")
    assert "first value 0 of the mask read as its column names" in from_csv.stderr
    assert loads(from_csv) == loads(run("loss", folder / "kept_logits.npy", "--labels", folder / "kept_labels.npy",
                                        "-f", "json"))


@pytest.fixture
def saved_batch(tmp_path):
    """A right-padded batch saved as a model's outputs are: logits, input_ids (pad 0) and attention_mask."""
    rng = np.random.default_rng(4)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    ids = np.where(mask == 1, rng.integers(1, 5, (2, 6)), 0)
    return {"logits": rng.normal(size=(2, 6, 5)).astype(np.float32), "input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
def test_a_batch_scored_without_the_attention_mask_saved_beside_it_is_refused(tmp_path, saved_batch, suffix):
    path = tmp_path / f"batch.{suffix}"
    if suffix == "npz":
        np.savez(path, **saved_batch)
    else:
        pytest.importorskip("safetensors.numpy").save_file(saved_batch, str(path))
    args = ["--key", "logits", "--labels", path, "--labels-key", "input_ids", "--shift-labels", "-f", "json"]
    assert_one_error_line(run("loss", path, *args), "attention_mask", f"--mask {path}")
    assert_one_error_line(run("compare", path, path, "--key", "logits", "-f", "json"), "attention_mask")
    torch = pytest.importorskip("torch")
    logits, ids = torch.from_numpy(saved_batch["logits"]).double(), torch.from_numpy(saved_batch["input_ids"])
    labels = torch.where(torch.from_numpy(saved_batch["attention_mask"]) == 1, ids, -100)  # as HF's collator
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 5), labels[:, 1:].reshape(-1))
    masked = loads(run("loss", path, *args, "--mask", path))
    assert masked["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_labels_that_already_ignore_the_padding_need_no_mask(tmp_path, saved_batch):
    labels = np.where(saved_batch["attention_mask"] == 1, saved_batch["input_ids"], -100)
    np.savez(tmp_path / "batch.npz", **saved_batch, labels=labels)
    completed = run("loss", tmp_path / "batch.npz", "--key", "logits", "--labels", tmp_path / "batch.npz",
                    "--labels-key", "labels", "--shift-labels", "-f", "json")
    assert completed.returncode == 0, completed.stderr


def test_unshifted_token_ids_are_refused_saying_to_add_shift_labels(tmp_path):
    """A Trainer's eval dump: logits of a model that predicts the next token, and label_ids as unshifted ids."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    ids = rng.integers(0, 50, (4, 16))
    logits = rng.normal(size=(4, 16, 50)).astype(np.float32)
    logits[:, :-1][np.arange(4)[:, None], np.arange(15), ids[:, 1:]] += 4.0  # position t predicts token t + 1
    np.savez(tmp_path / "eval.npz", logits=logits, labels=ids)
    line = assert_one_error_line(run("loss", tmp_path / "eval.npz", "--labels", tmp_path / "eval.npz", "-f", "json"))
    assert "unshifted" in line and "--shift-labels" in line
    assert_one_error_line(run("compare", tmp_path / "eval.npz", tmp_path / "eval.npz", "--labels",
                              tmp_path / "eval.npz", "-f", "json"), "--shift-labels")
    shifted = loads(run("loss", tmp_path / "eval.npz", "--labels", tmp_path / "eval.npz", "--shift-labels",
                        "-f", "json"))
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits[:, :-1]).double().reshape(-1, 50),
                                                 torch.from_numpy(ids[:, 1:]).reshape(-1))
    assert shifted["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_a_mask_with_row_names_is_paired_with_the_logits_rows_by_name(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(12)
    names = [f"s{i}" for i in range(10)]
    logits, labels = rng.normal(size=(10, 4)), rng.integers(0, 4, 10)
    mask = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0, 1])
    pd.DataFrame(logits, index=names, columns=list("abcd")).to_csv(tmp_path / "logits.csv")
    pd.Series(labels, index=names, name="label")[::-1].to_csv(tmp_path / "labels.csv")
    pd.Series(mask, index=names, name="keep")[::-1].to_csv(tmp_path / "mask.csv")
    completed = run("loss", tmp_path / "logits.csv", "--labels", tmp_path / "labels.csv", "--mask",
                    tmp_path / "mask.csv", "-f", "json")
    assert "rows of the mask reordered by their names" in completed.stderr
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(10), labels][mask == 1].mean()
    assert loads(completed)["loss"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("index", [True, False], ids=["with-index", "without-index"])
def test_a_boolean_mask_written_by_pandas_is_read_as_ones_and_zeros(padded, index):
    pd = pytest.importorskip("pandas")
    folder, kept = padded
    pd.DataFrame(kept).to_csv(folder / "mask.csv", index=index)  # True and False
    from_csv = run("loss", folder / "logits.npy", "--labels", folder / "labels.npy", "--mask", folder / "mask.csv",
                   "-f", "json")
    assert loads(from_csv) == loads(run("loss", folder / "kept_logits.npy", "--labels", folder / "kept_labels.npy",
                                        "-f", "json"))


def test_a_command_that_scores_no_position_is_not_asked_for_the_mask_beside_the_logits(tmp_path, saved_batch):
    np.savez(tmp_path / "batch.npz", **saved_batch)
    completed = run("topk", tmp_path / "batch.npz", "--key", "logits", "-k", "2", "-f", "json")
    assert completed.returncode == 0, completed.stderr


def test_decoder_labels_with_their_own_padding_are_not_held_to_an_encoders_mask(tmp_path, saved_batch):
    """A seq2seq dump: the attention_mask is the encoder's (here of the decoder's length by chance)."""
    torch = pytest.importorskip("torch")
    labels = saved_batch["input_ids"].copy()
    labels[0, 4:] = -100  # the decoder's own padding, elsewhere than the encoder's
    np.savez(tmp_path / "s2s.npz", **saved_batch, labels=labels)
    completed = run("loss", tmp_path / "s2s.npz", "--key", "logits", "--labels", tmp_path / "s2s.npz",
                    "--labels-key", "labels", "-f", "json")
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(saved_batch["logits"]).double().reshape(-1, 5),
                                                 torch.from_numpy(labels).reshape(-1))
    assert loads(completed)["loss"] == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("command", [["loss", "--labels", "{hf_labels}"], ["topk", "--labels", "{hf_labels}"],
                                     ["compare", "{cand}", "--labels", "{hf_labels}"]], ids=["loss", "topk", "compare"])
def test_a_mask_whose_kept_positions_all_have_ignored_labels_is_refused(padded, command):
    """An inverted mask (1 - attention_mask) with Hugging Face's labels (-100 at padding): together they keep no
    position, so every figure would be NaN with exit 0; refused as a mask that keeps nothing is."""
    folder, kept = padded
    np.save(folder / "hf_labels.npy", np.where(kept, np.load(folder / "labels.npy"), -100))
    np.save(folder / "inverted.npy", 1 - np.load(folder / "mask.npy"))
    args = [str(folder / f"{a[1:-1]}.npy") if a.startswith("{") else a for a in command]
    assert_one_error_line(run(command[0], folder / "logits.npy", *args[1:], "--mask", folder / "inverted.npy",
                              "-f", "json"), "keep no position together", "1 - mask")


@pytest.mark.parametrize("command", [
    ["loss", "--max-loss", "1", "--reduction", "sum"], ["loss", "--max-loss", "1", "--reduction", "none"],
    ["loss"], ["grad"], ["topk", "-k", "1", "--min-accuracy", "0"], ["temperature-sweep"],
    ["compare", "{cand}", "--max-seq-kl", "0.001", "--max-seq-ppl-ratio", "1"]],
    ids=["loss-sum-gate", "loss-none-gate", "loss", "grad", "topk", "temperature-sweep", "compare-seq-gates"])
def test_labels_that_are_all_ignored_are_refused(padded, command):
    """Every label -100: nothing is scored. torch gives a NaN mean, a sum of 0, a zero gradient; the sum's 0
    passed --max-loss, and compare's per-sequence gates passed with every sequence empty (exit 0). Refused, as a
    mask that keeps nothing is."""
    folder, _ = padded
    np.save(folder / "ignored.npy", np.full((2, 6), -100))
    args = [str(folder / f"{a[1:-1]}.npy") if a.startswith("{") else a for a in command[1:]]
    logits = folder / ("logits.npy" if command[0] == "compare" else "kept_logits.npy")
    labels = folder / "ignored.npy"
    if command[0] != "compare":
        np.save(labels, np.full(int(np.load(logits).shape[0]), -100))
    mask = ["--mask", folder / "mask.npy"] if command[0] == "compare" else []
    assert_one_error_line(run(command[0], logits, *args, "--labels", labels, *mask, "-f", "json"),
                          "every label is the ignore index (-100)", str(labels))


def test_next_token_labels_left_with_one_label_a_sequence_are_refused(padded):
    """Only each sequence's first position labelled: --shift-labels leaves none (it was loss 0 with --reduction sum)."""
    folder, _ = padded
    labels = np.full((2, 6), -100)
    labels[:, 0] = 1
    np.save(folder / "first_only.npy", labels)
    assert_one_error_line(run("loss", folder / "logits.npy", "--labels", folder / "first_only.npy", "--shift-labels",
                              "--mask", folder / "mask.npy", "--reduction", "sum", "--max-loss", "0.5", "-f", "json"),
                          "every label is the ignore index (-100) once --shift-labels has moved them")
