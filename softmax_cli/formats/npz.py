"""NumPy ``.npz`` archives: one named member read (pickles disallowed), every named array written."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..errors import InputError
from . import npy
from .base import Format, Source, pick_member

MAGIC = b"PK\x03\x04"  # a zip archive


def load(source, key: str | None, preferred: str) -> np.ndarray:
    """One member of an ``.npz`` archive, chosen by :func:`.base.pick_member`, pickles disallowed."""
    import zipfile

    try:
        with np.load(source, allow_pickle=False) as archive:
            name = pick_member(list(archive.files), key, preferred)
            try:
                return archive[name]
            except ValueError as error:
                raise InputError(f"cannot read array {name!r}: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise InputError(f"cannot read this .npz file: {error}") from None


def read(source: Source, key: str | None, preferred: str) -> tuple[np.ndarray, None]:
    return load(source.file(), key, preferred), None


def write(result, stream: BinaryIO, precision: int | None, label: str | None) -> None:
    """Every named array as ``NAME.npy`` in an uncompressed zip, as ``np.savez`` writes it."""
    import zipfile

    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in result.arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy.write_array(member, value)


FORMATS = (Format("npz", (".npz",), binary=True, read=read, write=write, magic=MAGIC),)
