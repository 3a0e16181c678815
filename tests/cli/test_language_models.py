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
