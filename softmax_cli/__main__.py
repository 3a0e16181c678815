"""Entry point of the ``softmax`` command and of ``python -m softmax_cli``."""

import os
import sys
import warnings


def main() -> None:
    # The command shares work out over the cores with its own threads; OpenBLAS
    # threads would then spin-wait against them (attention on a busy 2-core
    # machine: 10.9 s with two BLAS threads, 0.93 s with one). This must be set
    # before NumPy is imported; a user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The last resort of "no raw warning reaches the user": the core keeps its
    # arithmetic quiet where it knows an overflow is the answer, and anything a
    # path still lets through is dropped here, unless asked for with -W /
    # PYTHONWARNINGS or SOFTMAX_DEBUG=1.
    if not sys.warnoptions and os.environ.get("SOFTMAX_DEBUG") != "1":
        warnings.simplefilter("ignore")
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
