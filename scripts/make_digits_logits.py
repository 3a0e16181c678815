"""Write validation logits and labels of a real classifier for the calibration examples.

Trains a nearly unregularised multinomial logistic regression (``C=1000``) on
scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes), on
60% of the images, and writes its raw ``decision_function`` logits on the
other 40% (719 rows): the softmax of those logits is exactly the model's
``predict_proba``, and a weakly regularised model is overconfident, so
temperature scaling has something to correct.

Outputs, next to this script:

- ``digits_val_logits.npy``: float32, shape ``(719, 10)``
- ``digits_val_labels.npy``: int64, shape ``(719,)``
- ``digits_val.npz``: both, as ``logits`` and ``labels``

Dev-time dependency: scikit-learn (and NumPy). It is not a run-time
dependency of ``softmax_cli``; install it in a separate environment::

    python -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn numpy
    /tmp/sk/bin/python scripts/make_digits_logits.py

Everything is seeded, so the files are reproducible for a given
scikit-learn version (written with scikit-learn 1.9.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent.parent / "sample_data"
SEED = 0


def main() -> None:
    images, labels = load_digits(return_X_y=True)
    # Stratified, so every digit appears in the validation set in its usual share.
    train_x, val_x, train_y, val_y = train_test_split(
        images, labels, test_size=0.4, random_state=SEED, stratify=labels
    )
    # A large C is little regularisation: the model fits the training set
    # almost perfectly and becomes overconfident on unseen digits.
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1000.0, max_iter=20000, random_state=SEED))
    model.fit(train_x, train_y)
    logits = model.decision_function(val_x).astype(np.float32)
    val_y = val_y.astype(np.int64)
    np.save(HERE / "digits_val_logits.npy", logits)
    np.save(HERE / "digits_val_labels.npy", val_y)
    np.savez_compressed(HERE / "digits_val.npz", logits=logits, labels=val_y)
    accuracy = float((logits.argmax(axis=1) == val_y).mean())
    print(f"wrote {logits.shape[0]} rows x {logits.shape[1]} classes; validation accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
