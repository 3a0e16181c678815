"""Hugging Face ``.safetensors``: one tensor read (memory-mapped, or streamed in row blocks), every named array written.

The format is an 8-byte little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the raw C-ordered data. That
is read and written here rather than through the ``safetensors`` package:
its NumPy API loads and saves whole arrays only, and both a 1 GiB input and
a result computed block by block must stay within the streaming memory bound.
The tests check every file against the package's own ``load_file`` and
``save_file``. bfloat16 (``BF16``) needs ``ml_dtypes`` (:func:`.base.bfloat16`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InputError
from . import npy
from .base import FileRows, Source, Table, WriteOptions, bfloat16, check_unique_names, is_bfloat16, pick_member

# The safetensors library refuses headers above 100 MB; so do we, before reading one.
HEADER_LIMIT = 100_000_000
# Little-endian, as the format stores every dtype; BF16 is ml_dtypes' and looked up apart.
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
CODES = {np.dtype(text): code for code, text in DTYPES.items()}
# Where a tensor is: its dtype, shape and absolute byte offset in the file.
Placed = tuple[np.dtype, tuple[int, ...], int]


def _layout(file: BinaryIO, size: int) -> tuple[dict, dict, int]:
    """``(tensors, metadata, data_start)`` from the file's header, checked as the safetensors package checks
    it: strict JSON without a name given twice, ``__metadata__`` an object of strings, and byte ranges
    that tile the data from its first byte to the file's last."""
    import json

    prefix = file.read(8)
    length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
    if not 0 < length <= min(HEADER_LIMIT, size - 8):
        raise InputError("not a .safetensors file: its first 8 bytes are not the length of a header in the file")
    try:
        header = json.loads(file.read(length), object_pairs_hook=_once_each, parse_constant=_not_json)
    except InputError:  # the hooks' own words (an InputError is a ValueError too)
        raise
    except (UnicodeDecodeError, ValueError):  # ValueError: an integer past 4,300 digits too
        raise InputError("not a .safetensors file: its header is not JSON") from None
    except RecursionError:
        raise InputError("its .safetensors header nests JSON deeper than Python parses") from None
    if not isinstance(header, dict):
        raise InputError("not a .safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise InputError("its .safetensors __metadata__ is not an object of text values; the file is damaged")
    _check_tiling(header, size - 8 - length)
    return header, metadata, 8 + length


def _once_each(pairs: list[tuple[str, object]]) -> dict:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise InputError(f"its .safetensors header names {twice[:80]!r} twice; the file is damaged")
    return dict(pairs)


def _not_json(constant: str):
    raise InputError(f"not a .safetensors file: its header holds {constant}, which is not JSON")


def _is_size(n) -> bool:
    """A header's size or offset: an int64 (JSON's true is a Python int too; past 2**63 no reader holds it)."""
    return type(n) is int and 0 <= n < 2**63


def _check_tiling(tensors: dict, data_bytes: int) -> None:
    """Every tensor's byte range, laid end to end from 0, covers the data exactly: no gap, no overlap."""
    spans = []
    for name, entry in tensors.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(map(_is_size, offsets)) and offsets[0] <= offsets[1]):
            raise InputError(f"tensor {name!r} has no valid dtype, shape and data_offsets in the header")
        spans.append((offsets[0], offsets[1], name))
    covered = 0
    for begin, end, name in sorted(spans):
        if begin != covered:
            relation = "overlap" if begin < covered else "leave a gap after"
            raise InputError(f"tensor {name!r}: bytes {begin}..{end} {relation} the tensor before them; "
                             "the file is damaged")
        covered = end
    if covered < data_bytes:
        raise InputError(f"its tensors cover {covered} bytes of data where the file holds {data_bytes}; "
                         "the file is damaged")


def _dtype(code) -> np.dtype:
    if code == "BF16":
        return bfloat16()
    if not isinstance(code, str) or code not in DTYPES:
        shown = code if isinstance(code, str) else json_kind(code)
        what = "float8 " if shown.startswith("F8_") else ""
        raise InputError(f"{what}tensors of dtype {shown[:40]} are not supported; this tool reads "
                         f"{', '.join([*DTYPES, 'BF16'])}: save them as float32 (torch: tensor.float())")
    return np.dtype(DTYPES[code])


def json_kind(value) -> str:
    """What a JSON value is, for a message that must not print it whole (it may be 5,000 digits long)."""
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), "a string")


def _placed(tensors: dict, name: str, data_start: int, size: int) -> Placed:
    """A tensor's dtype, shape and absolute offset, checked against the file's size."""
    entry = tensors[name]
    try:
        code, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        valid = all(map(_is_size, (*shape, begin, end)))
    except (TypeError, KeyError, ValueError):
        valid = False
    if not valid:
        raise InputError(f"tensor {name!r} has no valid dtype, shape and data_offsets in the header")
    dtype = _dtype(code)
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a product past int64 cannot wrap to a small size
    if end - begin != nbytes or data_start + end > size:
        raise InputError(f"tensor {name!r}: bytes {begin}..{end} do not hold shape {list(shape)} of {code} "
                         "in this file (truncated?)")
    return dtype, shape, data_start + begin


def _find(file: BinaryIO, size: int, key: str | None, preferred: str) -> tuple[Placed, list[str] | None]:
    """The chosen tensor (:func:`.base.pick_member`) and the class names kept in the metadata."""
    import json

    tensors, metadata, data_start = _layout(file, size)
    name = pick_member(list(tensors), key, preferred)
    placed = _placed(tensors, name, data_start, size)
    try:
        classes = json.loads(metadata.get("classes", "null"))
    except (TypeError, ValueError, RecursionError):  # not ours: another producer's metadata, not class names
        classes = None
    shape = placed[1]
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes) and shape):
        return placed, None
    if len(classes) != shape[-1]:
        if len(tensors) == 1:  # names of the last axis of the file's one tensor, and a count that cannot be
            raise InputError(f"the metadata's classes name {len(classes)} classes, but tensor {name!r} has "
                             f"{shape[-1]} on its last axis; write one name a class, or no classes")
        return placed, None  # another tensor of the file, of another last axis, is the one named
    check_unique_names(classes, "__metadata__ 'classes'")
    return placed, classes


def read(source: Source, key: str | None, preferred: str) -> Table:
    if source.path is None:
        (dtype, shape, offset), classes = _find(io.BytesIO(source.data), len(source.data), key, preferred)
        return Table(np.frombuffer(source.data, dtype, math.prod(shape), offset).reshape(shape), classes)
    with open(source.path, "rb") as file:
        (dtype, shape, offset), classes = _find(file, source.path.stat().st_size, key, preferred)
    if 0 in shape:
        return Table(np.empty(shape, dtype), classes)
    return Table(np.memmap(source.path, dtype, "r", offset, shape or (1,)).reshape(shape), classes)


def row_blocks(path: Path, block_bytes: int, key: str | None) -> FileRows | None:
    """The chosen tensor as streamable rows (its class axis last), or None for a scalar or an empty one."""
    with open(path, "rb") as file:
        (dtype, shape, offset), _ = _find(file, path.stat().st_size, key, "logits")
    if len(shape) == 0 or 0 in shape:
        return None
    return FileRows(path, shape, dtype, offset, block_bytes)


# ---------------------------------------------------------------- writing

def _code(dtype: np.dtype) -> str | None:
    return "BF16" if is_bfloat16(dtype) else CODES.get(dtype)


def write(result, stream: BinaryIO, options: WriteOptions) -> None:
    """Every numeric array under its name (scalars as 0-d tensors), class names as JSON in metadata ``classes``.

    The metadata also holds ``command``, ``version``, ``inputs`` and ``gates``
    (:meth:`softmax_cli.result.Result.metadata`), each as JSON text.

    Text arrays (topk's ``names``) cannot be tensors; they are the indices
    looked up in ``classes``. Tensors are laid out widest dtype first, as the
    library does, so each starts aligned to its own size.
    """
    import json

    arrays = {name: value for name, value in result.arrays.items() if _code(value.dtype) is not None}
    order = sorted(arrays, key=lambda name: -arrays[name].dtype.itemsize)
    metadata = {"classes": json.dumps(result.classes)} if result.classes is not None else {}
    # What produced it and the gates' verdicts (Result.metadata), as JSON text: metadata values are strings.
    metadata |= {name: json.dumps(value) for name, value in result.metadata().items()}
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in order:
        value = arrays[name]
        nbytes = int(np.prod(value.shape, dtype=np.int64)) * value.dtype.itemsize
        header[name] = {"dtype": _code(value.dtype), "shape": list(value.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the library pads it
    stream.write(len(text).to_bytes(8, "little"))
    stream.write(text)
    for name in order:
        npy.write_data(stream, arrays[name])


def looks_like_safetensors(source: Source) -> bool:
    """Standard input (or a file without an extension) opening with a header length and a JSON object."""
    head = source.head
    return len(head) > 9 and head[8:10] == b'{"' and int.from_bytes(head[:8], "little") <= HEADER_LIMIT

