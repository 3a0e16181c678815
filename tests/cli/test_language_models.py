"""Language-model logits end to end: a tiny GPT-2 built from a config (random weights, no download).

Hugging Face's own causal-LM loss is the reference for ``loss --shift-labels
--mask``; tests/llama_reference.py (llama.cpp's formulas in float64) for
``compare``; the model runs in bfloat16 for the candidate.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, run
from llama_reference import llama_report, report_of_summary

BATCH, SEQ, VOCAB = 3, 16, 96


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """Files of a right-padded batch: reference and bf16-candidate logits (NaN where padded), ids, mask; HF's loss."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=SEQ)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(1, VOCAB, (BATCH, SEQ))
    lengths = torch.tensor([SEQ, 11, 7])
    mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, 0)
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        seq_losses = [float(model(input_ids=ids[i:i + 1], attention_mask=mask[i:i + 1], labels=labels[i:i + 1]).loss)
                      for i in range(BATCH)]
        cand = model.to(torch.bfloat16)(input_ids=ids, attention_mask=mask).logits.float()
    folder = tmp_path_factory.mktemp("gpt2")
    # Shifted by hand and unpadded: every position of the first SEQ - 1 counts.
    np.save(folder / "ref_shifted.npy", out.logits.numpy()[:, :-1])
    np.save(folder / "cand_shifted.npy", cand.numpy()[:, :-1])
    np.save(folder / "next_ids.npy", ids.numpy()[:, 1:])
    ref_logits, cand_logits = out.logits.numpy().copy(), cand.numpy().copy()
    ref_logits[mask.numpy() == 0] = np.nan  # padding may hold anything
    cand_logits[mask.numpy() == 0] = np.nan
    np.save(folder / "ref.npy", ref_logits)
    np.save(folder / "cand.npy", cand_logits)
    np.save(folder / "ids.npy", ids.numpy())
    np.save(folder / "mask.npy", mask.numpy())
    np.savez(folder / "batch.npz", logits=ref_logits, attention_mask=mask.numpy())
    return {"folder": folder, "loss": float(out.loss), "seq_losses": seq_losses, "ref": out.logits.numpy().astype(np.float64),
            "cand": cand.numpy().astype(np.float64), "ids": ids.numpy(), "mask": mask.numpy().astype(bool)}


def loads(completed) -> dict:
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def assert_report(out: dict, expected: dict) -> None:
    """Every field of llama.cpp's report, to the precision float32 logits allow."""
    got = report_of_summary(out)
    # float32 logits give each NLL to about 1e-6: differences of two perplexities keep that much of theirs.
    absolute = {"ppl_diff": 1e-6 * expected["ppl_ref"], "ppl_diff_stderr": 1e-5 * expected["ppl_ref"],
                "ln_ppl_ratio": 1e-6, "ln_ppl_ratio_stderr": 1e-6, "ppl_ratio_stderr": 1e-6}
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-4, abs=absolute.get(name, 1e-7)), name


@pytest.mark.parametrize("logits", ["ref.npy", "batch.npz"])  # streamed, and in memory with the mask's key
def test_loss_equals_hugging_faces_causal_lm_loss(gpt2, logits):
    folder = gpt2["folder"]
    mask = ["--mask", folder / "batch.npz", "--mask-key", "attention_mask"] if logits.endswith("npz") else \
        ["--mask", folder / "mask.npy"]
    out = loads(run("loss", folder / logits, "--labels", folder / "ids.npy", "--shift-labels", *mask, "-f", "json"))
    assert out["loss"] == pytest.approx(gpt2["loss"], rel=1e-5)
    assert out["perplexity"] == pytest.approx(np.exp(gpt2["loss"]), rel=1e-5)
    assert out["bits_per_token"] == pytest.approx(gpt2["loss"] / np.log(2), rel=1e-5)


def test_per_sequence_loss_equals_hugging_face_one_sequence_at_a_time(gpt2):
    folder = gpt2["folder"]
    out = loads(run("loss", folder / "ref.npy", "--labels", folder / "ids.npy", "--shift-labels", "--mask",
                    folder / "mask.npy", "--per-sequence", "-f", "json"))
    np.testing.assert_allclose(out["seq_nll"], gpt2["seq_losses"], rtol=1e-5)
    np.testing.assert_allclose(out["seq_perplexity"], np.exp(gpt2["seq_losses"]), rtol=1e-5)
    assert out["seq_n_scored"] == (gpt2["mask"].sum(axis=1) - 1).tolist()


def test_compare_gives_llama_cpps_report_on_the_scored_positions(gpt2):
    folder = gpt2["folder"]
    out = loads(run("compare", folder / "ref.npy", folder / "cand.npy", "--labels", folder / "ids.npy",
                    "--shift-labels", "--mask", folder / "mask.npy", "-f", "json"))
    # Position t is scored against token t + 1 when that token is not padding.
    scored = np.zeros_like(gpt2["mask"])
    scored[:, :-1] = gpt2["mask"][:, 1:]
    next_ids = np.roll(gpt2["ids"], -1, axis=1)
    expected = llama_report(gpt2["ref"][scored], gpt2["cand"][scored], next_ids[scored])
    assert_report(out, expected)


def test_compare_of_hand_shifted_unmasked_logits_gives_llama_cpps_report_over_every_position(gpt2):
    """96 classes: too few for a vocabulary's padding check (see test_padding_scored_without_a_mask_is_refused),
    so every position counts, padding included, as asked."""
    folder = gpt2["folder"]
    out = loads(run("compare", folder / "ref_shifted.npy", folder / "cand_shifted.npy", "--labels",
                    folder / "next_ids.npy", "-f", "json"))
    expected = llama_report(gpt2["ref"][:, :-1].reshape(-1, VOCAB), gpt2["cand"][:, :-1].reshape(-1, VOCAB),
                            gpt2["ids"][:, 1:].reshape(-1))
    assert out["n_scored"] == BATCH * (SEQ - 1)
    assert_report(out, expected)


def test_mask_of_the_wrong_shape_is_refused_in_one_line(gpt2):
    folder = gpt2["folder"]
    completed = run("loss", folder / "ref.npy", "--labels", folder / "ids.npy", "--mask", "1,0")
    assert_one_error_line(completed, "the mask has shape (2,)", "(3, 16)", "--mask")


def test_smallest_padded_compare_has_zero_kl():
    out = loads(run("compare", "0 0; 0 0", "0 0; 9 0", "--labels", "0,-100", "-f", "json"))
    assert (out["kl_mean"], out["kl_max"], out["top1_agreement"], out["n_scored"]) == (0.0, 0.0, 1.0, 1)


@pytest.fixture(scope="module")
def bfloat16_logits(tmp_path_factory):
    """bfloat16 logits (V = 1000) saved by safetensors from torch, their token ids, and torch's float64 figures."""
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    folder = tmp_path_factory.mktemp("bf16")
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(2, 64, 1000, generator=generator) * 0.4).bfloat16()
    ids = torch.randint(0, 1000, (2, 64), generator=generator)
    safetensors_torch.save_file({"logits": logits}, str(folder / "logits.safetensors"))
    np.save(folder / "ids.npy", ids.numpy())
    token_nll = torch.nn.functional.cross_entropy(logits.double()[:, :-1].reshape(-1, 1000), ids[:, 1:].reshape(-1),
                                                  reduction="none").reshape(2, 63)
    return folder, token_nll.mean().item(), token_nll.mean(dim=1).numpy()


def test_a_loss_gate_on_bfloat16_logits_measures_the_exact_mean(bfloat16_logits):
    """The loss printed is torch's, rounded to bfloat16 (a step of 2**-5 near 7); the gate holds the exact mean to the
    bound, as the perplexity beside it does: rounded, it passed a loss above the bound."""
    folder, exact, _ = bfloat16_logits
    bound = exact - 0.002
    completed = run("loss", folder / "logits.safetensors", "--labels", folder / "ids.npy", "--shift-labels",
                    "--max-loss", f"{bound:.6f}", "-f", "json")
    assert completed.returncode == 1, completed.stderr
    gate = json.loads(completed.stdout)["gates"][0]
    assert (gate["passed"], gate["measured"]) == (False, pytest.approx(exact, rel=1e-6))


def test_per_sequence_figures_of_bfloat16_logits_are_exact_means(bfloat16_logits):
    folder, _, per_sequence = bfloat16_logits
    completed = run("loss", folder / "logits.safetensors", "--labels", folder / "ids.npy", "--shift-labels",
                    "--per-sequence", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["seq_nll"], per_sequence, rtol=1e-6)


@pytest.fixture(scope="module")
def predictive(tmp_path_factory):
    """Logits (4, 32, 500) that favour each next token (top-1 right about 9 times in 10), their token ids, and the
    same ids counted from 1 where the largest id never occurs (as in a large vocabulary)."""
    rng = np.random.default_rng(21)
    ids = rng.integers(0, 499, (4, 32))  # id 499 never occurs: 1-based ids stay in range
    logits = rng.normal(size=(4, 32, 500)).astype(np.float32)
    logits[:, :-1][np.arange(4)[:, None], np.arange(31)[None, :], ids[:, 1:]] += 4.0
    folder = tmp_path_factory.mktemp("predictive")
    np.save(folder / "logits.npy", logits)
    np.save(folder / "ids.npy", ids)
    np.save(folder / "ids_from_1.npy", ids + 1)
    np.save(folder / "rows.npy", logits[:, :-1].reshape(-1, 500))
    np.save(folder / "next_from_1.npy", ids[:, 1:].reshape(-1) + 1)
    return folder, logits, ids


@pytest.mark.parametrize("inputs", [["logits.npy", "ids_from_1.npy", "--shift-labels"], ["rows.npy", "next_from_1.npy"]],
                         ids=["sequences", "flat-rows"])
def test_token_ids_counted_from_1_are_refused(predictive, inputs):
    """1-based ids pass the range check when the largest id never occurs, and the below-chance check needs ten rows a
    class; the logits' top-1 picks label - 1 far more often than the label, which says so."""
    folder, _, _ = predictive
    logits, labels, *shift = inputs
    assert_one_error_line(run("loss", folder / logits, "--labels", folder / labels, *shift), "1-based", "subtract 1")


def test_token_ids_from_0_of_the_same_logits_equal_torch(predictive):
    torch = pytest.importorskip("torch")
    folder, logits, ids = predictive
    out = loads(run("loss", folder / "logits.npy", "--labels", folder / "ids.npy", "--shift-labels", "-f", "json"))
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits[:, :-1]).double().reshape(-1, 500),
                                                 torch.from_numpy(ids[:, 1:]).reshape(-1))
    assert out["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_the_loss_gate_on_bfloat16_logits_says_which_figure_it_held_to_the_bound(bfloat16_logits):
    # The loss written is bfloat16 (7.0); a reader comparing it with the bound needs the exact mean the gate used.
    folder, exact, _ = bfloat16_logits
    completed = run("loss", folder / "logits.safetensors", "--labels", folder / "ids.npy", "--shift-labels",
                    "--max-loss", "8", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    note = f"the loss is written in bfloat16, as torch returns it (7); --max-loss holds the exact mean ({exact:.6g})"
    assert note in completed.stderr


@pytest.fixture(scope="module")
def padded_ids(tmp_path_factory):
    """A batch padded with id 0 to the longest of its sequences (32, 25, 18, 10 tokens), right and left, its
    attention_mask, and logits of a model that predicts the next token, as files."""
    rng = np.random.default_rng(0)
    batch, seq, vocab, lengths = 4, 32, 1000, [32, 25, 18, 10]
    mask = (np.arange(seq)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    ids = np.where(mask == 1, rng.integers(1, vocab, (batch, seq)), 0)
    logits = rng.normal(size=(batch, seq, vocab)).astype(np.float32)
    logits[np.arange(batch)[:, None], np.arange(seq - 1)[None, :], ids[:, 1:]] += 5
    left = np.stack([np.roll(row, seq - n) for row, n in zip(ids, lengths)])
    folder = tmp_path_factory.mktemp("padded")
    for name, array in {"logits": logits, "ids": ids, "left_ids": left, "mask": mask, "inverted": 1 - mask,
                        "labels": np.where(mask == 1, ids, -100)}.items():
        np.save(folder / f"{name}.npy", array)
    return folder, logits, ids, mask


def _shifted_loss(logits, ids, keep) -> float:
    torch = pytest.importorskip("torch")
    labels = torch.from_numpy(np.where(keep, ids, -100)[:, 1:].copy())
    return float(torch.nn.functional.cross_entropy(torch.from_numpy(logits[:, :-1]).double().reshape(-1, 1000),
                                                   labels.reshape(-1)))


@pytest.mark.parametrize("command", ["loss", "grad", "compare"])
@pytest.mark.parametrize("side", ["end", "start"])
def test_padding_scored_without_a_mask_is_refused(padded_ids, command, side):
    """Token ids of a padded batch from separate files, no mask, no -100: the padding was scored as text (loss
    6.08 for 3.50, exit 0)."""
    folder, *_ = padded_ids
    ids = folder / ("ids.npy" if side == "end" else "left_ids.npy")
    other = [folder / "logits.npy"] if command == "compare" else []
    assert_one_error_line(run(command, folder / "logits.npy", *other, "--labels", ids, "--shift-labels",
                              "-f", "json"),
                          f"3 sequences {side} with runs of token id 0 (7, 14, 22 positions), as padding does",
                          "--mask", str(ids))


def test_padding_left_out_by_its_mask_or_its_labels_is_scored(padded_ids):
    folder, logits, ids, mask = padded_ids
    expected = _shifted_loss(logits, ids, mask == 1)
    for args in (["--labels", folder / "ids.npy", "--mask", folder / "mask.npy"], ["--labels", folder / "labels.npy"]):
        out = loads(run("loss", folder / "logits.npy", *args, "--shift-labels", "-f", "json"))
        assert out["loss"] == pytest.approx(expected, rel=1e-6)


def test_token_classification_tags_ending_sentences_are_no_padding(tmp_path):
    """(B, T, 9) NER logits whose sentences end with runs of the "O" tag (0) of several lengths: a few classes are
    tags, not a vocabulary, and are scored as given."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    tags = rng.integers(1, 9, (3, 12))
    tags[0, 8:], tags[1, 5:], tags[2, 9:] = 0, 0, 0
    logits = rng.normal(size=(3, 12, 9))
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "tags.npy", tags)
    out = loads(run("loss", tmp_path / "logits.npy", "--labels", tmp_path / "tags.npy", "-f", "json"))
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits).reshape(-1, 9),
                                                 torch.from_numpy(tags).reshape(-1))
    assert out["loss"] == pytest.approx(float(expected), rel=1e-12)


def test_a_mask_of_ones_scores_the_padding_as_asked(padded_ids, tmp_path):
    folder, logits, ids, mask = padded_ids
    np.save(tmp_path / "ones.npy", np.ones_like(mask))
    out = loads(run("loss", folder / "logits.npy", "--labels", folder / "ids.npy", "--shift-labels", "--mask",
                    tmp_path / "ones.npy", "-f", "json"))
    assert out["loss"] == pytest.approx(_shifted_loss(logits, ids, np.ones_like(mask, dtype=bool)), rel=1e-6)


@pytest.mark.parametrize("command", ["loss", "compare"])
def test_a_mask_that_keeps_only_the_padding_is_refused(padded_ids, command):
    """1 - attention_mask: every kept label was the pad id 0 (loss 10.94, accuracy 0.07, exit 0)."""
    folder, *_ = padded_ids
    other = [folder / "logits.npy"] if command == "compare" else []
    assert_one_error_line(run(command, folder / "logits.npy", *other, "--labels", folder / "ids.npy",
                              "--shift-labels", "--mask", folder / "inverted.npy", "-f", "json"),
                          "has the token id 0, while those it drops hold", "give 1 - mask",
                          str(folder / "inverted.npy"))


def test_compare_reads_the_attention_mask_saved_beside_the_candidate(tmp_path):
    """The candidate's .npz holds the attention_mask: only the reference's file was looked at, so the padding's
    garbage was scored (KL 8.68 for 0.10) and --max-kl failed on it."""
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2, 6, 20)).astype(np.float32)
    cand = (ref + rng.normal(0, 0.5, ref.shape)).astype(np.float32)
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0]])
    cand[1, 3:] = rng.normal(0, 20, (3, 20))
    np.save(tmp_path / "ref.npy", ref)
    np.savez(tmp_path / "cand.npz", logits=cand, attention_mask=mask)
    assert_one_error_line(run("compare", tmp_path / "ref.npy", tmp_path / "cand.npz", "--key", "logits",
                              "--max-kl", "0.2", "-f", "json"),
                          "holds an attention_mask that drops 3 position(s)", "--mask", str(tmp_path / "cand.npz"))
    out = loads(run("compare", tmp_path / "ref.npy", tmp_path / "cand.npz", "--key", "logits", "--mask",
                    tmp_path / "cand.npz", "--max-kl", "0.2", "-f", "json"))
    kept = mask.astype(bool)
    log_p = ref[kept] - np.log(np.exp(ref[kept].astype(np.float64)).sum(-1, keepdims=True))
    log_q = cand[kept] - np.log(np.exp(cand[kept].astype(np.float64)).sum(-1, keepdims=True))
    expected = float(np.mean((np.exp(log_p) * (log_p - log_q)).sum(-1)))
    assert out["n_scored"] == 9 and out["kl_mean"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("command", [["topk", "-k", "1", "--min-accuracy", "0.9"], ["temperature-sweep"]])
def test_topk_and_temperature_sweep_refuse_the_padding_as_loss_does(padded_ids, command):
    """topk and temperature-sweep had none of loss's padding checks: an inverted mask gave top-1 accuracy 1.0 on
    the padding and passed --min-accuracy."""
    folder, *_ = padded_ids
    assert_one_error_line(run(command[0], folder / "logits.npy", *command[1:], "--labels", folder / "ids.npy",
                              "--mask", folder / "inverted.npy", "-f", "json"), "it keeps the padding", "1 - mask")
    assert_one_error_line(run(command[0], folder / "logits.npy", *command[1:], "--labels", folder / "ids.npy",
                              "-f", "json"), "3 sequences end with runs of token id 0")
