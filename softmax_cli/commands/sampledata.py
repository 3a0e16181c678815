"""``softmax sample-data``: the sample files every documented example reads, written where the examples expect them.

The files ship inside the package (``softmax_cli/sample_data/``), so the
examples of the README, of docs/ and of every ``--help`` run after a plain
``pip install softmax-toolkit``, not only from a clone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OutputError, UsageError

FOLDER = "sample_data"


def packaged_samples() -> list:
    """The sample files in the installed package, by name (the folder's files, nothing hidden)."""
    folder = resources.files("softmax_cli") / FOLDER
    return sorted((entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith(".")),
                  key=lambda entry: entry.name)


DirectoryArg = Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                              help="Folder to write sample_data/ into; made if missing.  "
                                              "[default: .]")]


def sample_data(directory: DirectoryArg = Path(".")) -> None:
    """Write the sample files that every example uses into DIR/sample_data/, and list them.

    The same files, with the same names, as sample_data/ in the repository.
    Nothing is written when DIR/sample_data exists already.

    \b
    Example:
      softmax sample-data . && softmax probs sample_data/logits.csv
    """
    target = directory / FOLDER
    if os.path.lexists(target):
        raise UsageError(f"{target} exists already; remove it, or write the samples elsewhere: "
                         f"softmax sample-data OTHER_DIR")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Written whole into a hidden folder beside the target and renamed into place: never half a sample set.
        staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=directory))
    except OSError as error:
        raise OutputError(f"cannot create a folder in {directory}: {error.strerror}") from None
    try:
        for sample in packaged_samples():
            (staging / sample.name).write_bytes(sample.read_bytes())
        staging.chmod(0o777 & ~_umask())
        staging.rename(target)
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for sample in packaged_samples():
        print(target / sample.name)


def _umask() -> int:
    """The process's umask (mkdtemp makes a private folder; the samples are an ordinary one)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
