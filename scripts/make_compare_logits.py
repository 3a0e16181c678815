"""Write a pair of logits of one real model before and after int8 weight quantisation, for ``softmax compare``.

Trains a small multilayer perceptron (64 inputs -> 64 ReLU units -> 10
classes) on scikit-learn's bundled handwritten digits, with the same 60/40
stratified split (seed 0) as ``make_digits_logits.py``, so the 719 validation
rows line up with ``digits_val_labels.npy``. Its logits on those rows are
computed twice in float32, the way an inference runtime would:

- ``compare_ref.npy``: with the trained float32 weights;
- ``compare_cand.npy``: with every weight matrix quantised to int8 per output
  channel (symmetric, scale = max |w| / 127 for each unit's column, rounded to
  nearest) and dequantised; biases stay float32, as in common int8 schemes.

The reference's softmax is the model's ``predict_proba`` (checked below), so
the pair is what a "did quantisation change my model?" CI check would see.
Both files are float32 of shape ``(719, 10)``.

Like ``make_digits_logits.py``, whose environment it uses, it needs
scikit-learn at development time only, not at run time::

    /tmp/sk/bin/python scripts/make_compare_logits.py

and it is seeded: the files are the same for a given scikit-learn version
(written with 1.9.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent.parent / "sample_data"
SEED = 0


def quantise_int8(weights: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel int8 quantisation of ``(inputs, outputs)`` weights, dequantised to float32."""
    scale = np.abs(weights).max(axis=0, keepdims=True) / 127
    scale[scale == 0] = 1  # an all-zero channel stays zero
    return (np.clip(np.round(weights / scale), -127, 127) * scale).astype(np.float32)


def logits(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The MLP's output before softmax: ReLU hidden layers, then a linear output layer, all in float32."""
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            np.maximum(h, 0, out=h)
    return h


def main() -> None:
    images, labels = load_digits(return_X_y=True)
    train_x, val_x, train_y, val_y = train_test_split(
        images, labels, test_size=0.4, random_state=SEED, stratify=labels
    )
    scaler = StandardScaler().fit(train_x)
    model = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-4, max_iter=2000, random_state=SEED)
    model.fit(scaler.transform(train_x), train_y)

    x = scaler.transform(val_x).astype(np.float32)
    weights = [(w.astype(np.float32), b.astype(np.float32)) for w, b in zip(model.coefs_, model.intercepts_)]
    reference = logits(x, weights)
    candidate = logits(x, [(quantise_int8(w), b) for w, b in weights])

    # The reference really is the model: its softmax is predict_proba (up to float32 rounding).
    shifted = reference.astype(np.float64) - reference.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    assert np.allclose(probs, model.predict_proba(scaler.transform(val_x)), atol=1e-5)
    # The rows are those of digits_val_labels.npy, written by make_digits_logits.py.
    existing = HERE / "digits_val_labels.npy"
    if existing.exists():
        assert np.array_equal(np.load(existing), val_y), "the split no longer matches digits_val_labels.npy"

    np.save(HERE / "compare_ref.npy", reference)
    np.save(HERE / "compare_cand.npy", candidate)
    for name, z in (("float32 weights", reference), ("int8 weights", candidate)):
        print(f"{name}: validation accuracy {float((z.argmax(axis=1) == val_y).mean()):.4f}")
    print(f"wrote {reference.shape[0]} rows x {reference.shape[1]} classes to compare_ref.npy and compare_cand.npy")


if __name__ == "__main__":
    main()
