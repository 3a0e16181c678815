"""NumPy ``.npz`` archives: one named member read (pickles disallowed), every named array written.

Reading goes through :mod:`zipfile` directly rather than ``np.load``, so that
what the archive is not (another format under an ``.npz`` name, an encrypted
or damaged member, a member that is not ``.npy``) is one line naming it, and a
member's header is checked (:func:`.npy.read_stream`) before its data is
inflated: decompression stops at what the header declares (no zip bomb).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from . import npy
from .base import Source, Table, WriteOptions, pick_member
from .registry import describe_content

METADATA = "metadata"  # the member holding Result.metadata() as JSON text


def _head(source) -> bytes:
    if isinstance(source, Path):
        with open(source, "rb") as file:
            return file.read(8)
    head = source.read(8)
    source.seek(0)
    return head


def load(source, key: str | None, preferred: str):
    """One member of an ``.npz`` archive, chosen by :func:`.base.pick_member`, pickles disallowed."""
    import zipfile
    import zlib

    head = _head(source)
    if not head.startswith(b"PK"):  # PK\x03\x04, or PK\x05\x06 for an empty archive
        raise InputError(f"not an .npz archive: this is {describe_content(head)}")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:  # "zip file version 17.3"
        raise InputError(f"cannot read this .npz file: {error}") from None
    with archive:
        # As np.load names them: "logits.npy" is the array "logits".
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        if len(members) != len(archive.infolist()):  # np.load would take the last of two: which is meant?
            names = [info.filename.removesuffix(".npy") for info in archive.infolist()]
            twice = next(name for name in names if names.count(name) > 1)
            raise InputError(f"the archive holds two members named {twice!r}; keep one (np.savez writes each name "
                             "once)")
        # Our own metadata member (what produced the result) is not an array to choose unless asked for.
        candidates = [name for name in members if name != METADATA or key == METADATA]
        name = pick_member(candidates, key, preferred)
        info = members[name]
        if info.flag_bits & 0x1:
            raise InputError(f"the member {info.filename!r} is encrypted; decrypt the archive first")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                      zipfile.ZIP_LZMA):
            raise InputError(f"the member {info.filename!r} uses zip compression method {info.compress_type}, "
                             "which is not supported (np.savez writes stored or deflated members)")
        try:
            with archive.open(info) as member:
                return npy.read_stream(member, info.file_size, f"the array {name!r}")
        except InputError as error:
            error.member = info.filename
            raise error from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise InputError(f"the member {info.filename!r} is damaged: {error}") from None


def read(source: Source, key: str | None, preferred: str) -> Table:
    return Table(load(source.file(), key, preferred))


def write(result, stream: BinaryIO, options: WriteOptions) -> None:
    """Every named array as ``NAME.npy`` in an uncompressed zip, as ``np.savez`` writes it."""
    import zipfile

    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in result.arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npy.write_array(member, value)
        if metadata := result.metadata():
            import json

            import numpy as np

            # A 0-d string array: np.load reads it without pickles (json.loads(str(npz["metadata"]))).
            with archive.open(f"{METADATA}.npy", "w") as member:
                npy.write_array(member, np.asarray(json.dumps(metadata)))

