"""NumPy ``.npy``: read (memory-mapped, pickles disallowed), read in row blocks, and written.

Streaming reads the data after the header as :class:`.base.FileRows`.
Writing a streamed array reserves the file's size up front and writes each
block on a second thread while the next is computed (:func:`write_data`, which
``.safetensors`` shares).
"""

from __future__ import annotations

import errno
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..core.blocks import threads_or_out_of_memory
from ..errors import InputError
from ..limits import check_memory, declared_bytes, describe_bytes
from .base import FileRows, Source, Table, WriteOptions, note
from .registry import describe_content, named

MAGIC = named("npy").magic
_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def load(source, mmap: bool) -> np.ndarray:
    """Read ``.npy`` with pickles disallowed; files are memory-mapped, not copied.

    The header is checked first (:func:`check_header`): NumPy itself would map
    or allocate whatever a damaged header claims.
    """
    if not isinstance(source, Path):
        return read_stream(source, len(source.getbuffer()))
    _header(source)
    try:
        return np.load(source, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"cannot read this .npy file: {error}") from None


def read(source: Source, key: str | None, preferred: str) -> Table:
    return Table(load(source.file(), mmap=source.path is not None))


# ---------------------------------------------------------------- the header, checked

@dataclass(frozen=True)
class Header:
    """What an ``.npy`` header declares, and where its data starts."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int
    nbytes: int  # of the data, checked against what follows the header


def _parse_header(file) -> tuple[tuple[int, ...], bool, np.dtype]:
    """NumPy's own header parser, its every failure (a damaged dictionary, an unknown dtype) one InputError."""
    import tokenize
    import warnings

    head = file.read(8)
    if head[:6] != MAGIC:
        raise InputError(f"not .npy data: this is {describe_content(head)}")
    # Version 3.0 differs from 2.0 only in allowing UTF-8 field names, which no array read here has.
    parse = {b"\x01\x00": np.lib.format.read_array_header_1_0, b"\x02\x00": np.lib.format.read_array_header_2_0,
             b"\x03\x00": np.lib.format.read_array_header_2_0}.get(head[6:])
    if parse is None:
        raise InputError(f"not an .npy version this tool reads (version bytes {head[6:]!r})")
    try:
        with warnings.catch_warnings():  # NumPy evaluates the header's text: a "\s" in it is Python's warning
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
            return parse(file)
    except (ValueError, TypeError, SyntaxError, OverflowError, RecursionError, MemoryError, EOFError,
            tokenize.TokenError) as error:
        raise InputError(f"the .npy header does not parse: {str(error)[:200]}") from None


def check_header(shape: tuple[int, ...], dtype: np.dtype, data_bytes: int) -> int:
    """The one check of an ``.npy`` header against its data, before anything is mapped or allocated.

    Refuses a dtype without size (``|V0``, ``S0``: NumPy divides by it and the
    process dies by SIGFPE) or holding objects, a negative dimension, and a
    shape whose size is not the data's; gives the data's size in bytes.
    """
    if dtype.hasobject:
        raise InputError("the .npy data holds Python objects (pickles), which are never read")
    nbytes = declared_bytes(tuple(shape), dtype, "the .npy header")
    if nbytes != data_bytes:
        truncated = " (truncated?)" if nbytes > data_bytes else ""
        raise InputError(f"the .npy header declares shape {shape} of {dtype} ({describe_bytes(nbytes)}), "
                         f"but {describe_bytes(data_bytes)} of data follow it{truncated}")
    return nbytes


def header_of(file, size: int) -> Header:
    """The checked header of the ``.npy`` data of ``size`` bytes that ``file`` is at the start of.

    A subarray dtype (``('<f8', (3,))``) is folded into the shape, as
    NumPy's arrays hold it: shape ``(2,)`` of it is a (2, 3) array of ``<f8``.
    Read as declared, each element would have been its first value only. A
    subarray of subarrays is unfolded to its innermost dtype, as NumPy makes
    an array of it: shape ``(4,)`` of ``(('<f8', (5,)), (2,))`` is (4, 2, 5).
    """
    shape, fortran, dtype = _parse_header(file)
    shape = tuple(shape)
    if dtype.subdtype is not None and fortran:
        raise InputError(f"the .npy header declares a subarray dtype {dtype} in Fortran order, which this tool "
                         "does not read; save the array with np.save (plain dtype, C order)")
    while dtype.subdtype is not None:
        dtype, inner = dtype.subdtype
        shape += tuple(inner)
    offset = file.tell()
    return Header(shape, fortran, dtype, offset, check_header(shape, dtype, size - offset))


def read_stream(file, size: int, what: str = "the array") -> np.ndarray:
    """The ``.npy`` data of ``size`` bytes in a stream (standard input, an ``.npz`` member), read whole.

    Never more than the checked header declares is read or allocated, and not
    at all when this process could not hold it.
    """
    header = header_of(file, size)
    check_memory(header.nbytes, what)
    buffer = bytearray(header.nbytes)
    view, filled = memoryview(buffer), 0
    while filled < header.nbytes:
        chunk = file.read(min(header.nbytes - filled, 1 << 24))
        if not chunk:
            raise InputError("the .npy data ends before its header says (truncated?)")
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    array = np.frombuffer(buffer, dtype=header.dtype, count=math.prod(header.shape))
    return array.reshape(header.shape, order="F" if header.fortran else "C")


# ---------------------------------------------------------------- reading in row blocks

def _header(path: Path) -> Header:
    with open(path, "rb") as file:
        return header_of(file, os.fstat(file.fileno()).st_size)


def row_blocks(path: Path, block_bytes: int, key: str | None = None) -> FileRows | None:
    """The file as streamable rows (class axis last), or None when it must be read whole."""
    header = _header(path)
    shape, fortran, dtype, offset = header.shape, header.fortran, header.dtype, header.offset
    if fortran or len(shape) == 0 or dtype.hasobject or dtype.names or 0 in shape:
        return None  # Fortran order, a scalar, records, or nothing to stream
    return FileRows(path, tuple(shape), dtype, offset, block_bytes)


# ---------------------------------------------------------------- writing

def write_array(stream: BinaryIO, array) -> None:
    """An ``.npy`` of an array, or of a streamed one (with ``blocks()``) block by block.

    Never through ``np.lib.format.write_array``: for a buffered stream it calls
    ``tofile``, which needs a file position, and standard output to a pipe has none.
    """
    if not hasattr(array, "blocks"):
        # np.asarray, not np.ascontiguousarray: that makes a 0-d scalar (a loss, kl_mean) 1-d.
        array = np.asarray(array, order="C")
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
    try:
        np.lib.format.write_array_header_1_0(stream, header)
    except ValueError:  # a header over 64 KiB (a very long shape) needs version 2.0
        np.lib.format.write_array_header_2_0(stream, header)
    write_data(stream, array)


def write_data(stream: BinaryIO, array) -> None:
    """An array's raw C-ordered bytes, or a streamed one's block by block (reserved, written behind)."""
    if not hasattr(array, "blocks"):
        write_in_pieces(stream, _bytes_of(array))
        return
    _reserve(stream, int(np.prod(array.shape)) * array.dtype.itemsize)
    _write_behind(stream, (np.ascontiguousarray(block, dtype=array.dtype) for block in array.blocks()))


def _bytes_of(array) -> memoryview:
    # As bytes: a buffer of ml_dtypes' bfloat16 cannot be exported as it is.
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


# Bytes per write call. Linux copies 2 GiB into the page cache in 0.6 s as 1 MiB
# writes but takes 3.7 s as 16 MiB ones (benchmarks/copy_floor.py's machine):
# a streamed block is handed to the kernel in pieces of this size.
WRITE_PIECE_BYTES = 1 << 20


def write_in_pieces(stream: BinaryIO, data: memoryview) -> None:
    """``stream.write(data)`` as writes of at most :data:`WRITE_PIECE_BYTES` (see there why)."""
    for start in range(0, len(data), WRITE_PIECE_BYTES):
        stream.write(data[start : start + WRITE_PIECE_BYTES])


def _reserve(stream: BinaryIO, size: int) -> None:
    """Allocate a file's remaining ``size`` bytes up front (ext4 then writes 2 GiB in a third of the time).

    A file system without the room refuses here, before any work (ENOSPC,
    EFBIG, EDQUOT are raised); pipes and archives cannot reserve, and need not.
    """
    try:
        os.posix_fallocate(stream.fileno(), stream.tell(), size)
    except OSError as error:
        if error.errno in _NO_ROOM:
            raise
    except (AttributeError, io.UnsupportedOperation):
        pass


def _write_behind(stream: BinaryIO, blocks: Iterator[np.ndarray]) -> None:
    """Write each block on a second thread while the next is computed (writes release the GIL).

    At most one computed block waits (one is being written, one computed),
    which keeps the writer busy and the memory small; an error on
    either side (a closed pipe, bad input in a later block) stops both.
    """
    import queue
    import threading

    pending: queue.Queue = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def writer() -> None:
        while (block := pending.get()) is not None:
            if not failure:
                try:
                    write_in_pieces(stream, _bytes_of(block))
                except BaseException as error:  # handed to the main thread below
                    failure.append(error)

    thread = threading.Thread(target=writer, daemon=True)
    with threads_or_out_of_memory():
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


def write(result, stream: BinaryIO, options: WriteOptions) -> None:
    """The primary array (``precision`` is for text; binary outputs keep every bit).

    Any other result is named on one ``note:`` line, so none is lost unseen.
    """
    left_out = list(result.arrays)[1:]
    if left_out:
        note(f"-f npy holds {result.primary_name} only; left out: {', '.join(left_out)} (-f npz holds every result)")
    write_array(stream, result.primary)


def fill_in_place(path: str, shape: tuple[int, ...], dtype: np.dtype, fill) -> None:
    """Make ``path`` an ``.npy`` of ``shape`` and let ``fill(out)`` write into a memory map of it.

    The file's blocks are reserved before the map is touched: a page that the
    file system cannot back (a full disk) would kill the process by SIGBUS.
    """
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    with open(path, "r+b") as file:
        if hasattr(os, "posix_fallocate"):  # not on macOS or Windows, where a full disk stays a risk
            os.posix_fallocate(file.fileno(), 0, os.fstat(file.fileno()).st_size)
    fill(out)
    out.flush()
    del out

