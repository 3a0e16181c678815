"""NumPy ``.npy``: read (memory-mapped, pickles disallowed), read in row blocks, and written.

Streaming reads the data after the header as :class:`.base.FileRows`.
Writing a streamed array reserves the file's size up front and writes each
block on a second thread while the next is computed (:func:`write_data`, which
``.safetensors`` shares).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InputError
from .base import FileRows, Format, Source, note

MAGIC = b"\x93NUMPY"


def load(source, mmap: bool) -> np.ndarray:
    """Read ``.npy`` with pickles disallowed; files are memory-mapped, not copied."""
    try:
        return np.load(source, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"cannot read this .npy file: {error}") from None


def read(source: Source, key: str | None, preferred: str) -> tuple[np.ndarray, None]:
    return load(source.file(), mmap=source.path is not None), None


# ---------------------------------------------------------------- reading in row blocks

def _header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    with open(path, "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                return None  # a newer header: read it whole with np.load
        except ValueError as error:
            raise InputError(f"cannot read this .npy file: {error}", where=str(path)) from None
        return shape, fortran, dtype, file.tell()


def row_blocks(path: Path, block_bytes: int, key: str | None = None) -> FileRows | None:
    """The file as streamable rows (class axis last), or None when it must be read whole."""
    header = _header(path)
    if header is None:
        return None
    shape, fortran, dtype, offset = header
    if fortran or len(shape) == 0 or dtype.hasobject or dtype.names or 0 in shape:
        return None  # Fortran order, a scalar, records, or nothing to stream
    return FileRows(path, tuple(shape), dtype, offset, block_bytes)


# ---------------------------------------------------------------- writing

def write_array(stream: BinaryIO, array) -> None:
    """An ``.npy`` of an array, or of a streamed one (with ``blocks()``) block by block."""
    if not hasattr(array, "blocks"):
        # np.asarray, not np.ascontiguousarray: that makes a 0-d scalar (a loss, kl_mean) 1-d.
        np.lib.format.write_array(stream, np.asarray(array, order="C"), allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
    try:
        np.lib.format.write_array_header_1_0(stream, header)
    except ValueError:  # a header over 64 KiB (a very long shape) needs version 2.0
        np.lib.format.write_array_header_2_0(stream, header)
    write_data(stream, array)


def write_data(stream: BinaryIO, array) -> None:
    """An array's raw C-ordered bytes, or a streamed one's block by block (reserved, written behind)."""
    if not hasattr(array, "blocks"):
        stream.write(_bytes_of(array))
        return
    _reserve(stream, int(np.prod(array.shape)) * array.dtype.itemsize)
    _write_behind(stream, (np.ascontiguousarray(block, dtype=array.dtype) for block in array.blocks()))


def _bytes_of(array) -> memoryview:
    # As bytes: a buffer of ml_dtypes' bfloat16 cannot be exported as it is.
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def _reserve(stream: BinaryIO, size: int) -> None:
    """Allocate a file's remaining ``size`` bytes up front (ext4 then writes 2 GiB in a third of the time).

    Pipes and archives cannot, and need not: they are left as they are.
    """
    try:
        os.posix_fallocate(stream.fileno(), stream.tell(), size)
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass


def _write_behind(stream: BinaryIO, blocks: Iterator[np.ndarray]) -> None:
    """Write each block on a second thread while the next is computed (writes release the GIL).

    At most two computed blocks wait, so memory stays bounded; an error on
    either side (a closed pipe, bad input in a later block) stops both.
    """
    import queue
    import threading

    pending: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def writer() -> None:
        while (block := pending.get()) is not None:
            if not failure:
                try:
                    stream.write(_bytes_of(block))
                except BaseException as error:  # handed to the main thread below
                    failure.append(error)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for block in blocks:
            if failure:
                break
            pending.put(block)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


def write(result, stream: BinaryIO, precision: int | None, label: str | None) -> None:
    """The primary array (``precision`` is for text; binary outputs keep every bit).

    Any other result is named on one ``note:`` line, so none is lost unseen.
    """
    left_out = list(result.arrays)[1:]
    if left_out:
        note(f"-f npy holds {result.primary_name} only; left out: {', '.join(left_out)} (-f npz holds every result)")
    write_array(stream, result.primary)


def fill_in_place(path: str, shape: tuple[int, ...], dtype: np.dtype, fill) -> None:
    """Make ``path`` an ``.npy`` of ``shape`` and let ``fill(out)`` write into a memory map of it."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    fill(out)
    out.flush()
    del out


FORMATS = (Format("npy", (".npy",), binary=True, read=read, write=write, magic=MAGIC, row_blocks=row_blocks),)
