"""Parquet (``.parquet``) and Arrow IPC (``.arrow``, ``.feather``) tables: read a row group at a time, and written.

Needs the optional ``pyarrow``, imported only here and only when such a file
is met. A table is read as one of:

- its numeric columns, which are the classes (column names -> class names);
  a pandas index, or else a first column of text, gives the row names;
- one list or fixed-size-list column of logits per row (``--key COLUMN``, or
  the only column besides the row names);
- one numeric column: a vector, as a one-column CSV is (labels, say).

Other columns are refused rather than guessed at. The array is allocated once
and filled a row group (Parquet) or a record batch (Arrow) at a time, so the
whole table is never held beside it. Writing gives the tidy table of
:func:`softmax_cli.tidy.tidy` (scalars as text in the schema metadata);
Arrow has no bfloat16, so bfloat16 columns are written as float32 (exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import numpy as np

from ..core.plausibility import is_label_name
from ..errors import InputError
from .base import (
    EXTRA_HINT,
    Source,
    Table,
    WriteOptions,
    distinct_ids,
    is_bfloat16,
    join_levels,
    joined_rows,
    label_column_among,
    missing_value,
    note,
    number_strings,
    pick_member,
)

# The first bytes of a Feather V1 file (V2 is the Arrow IPC file format, which opens with ARROW1).
FEATHER_V1_MAGIC = b"FEA1"
# Rows per written batch are gathered up to about this many bytes, so row groups are not tiny.
WRITE_BATCH_BYTES = 16 << 20


def _pyarrow():
    try:
        import pyarrow
    except ImportError:
        raise InputError(f"Parquet and Arrow files need pyarrow: {EXTRA_HINT.format(extra='parquet')}") from None
    return pyarrow


# ---------------------------------------------------------------- reading

def _is_list(kind) -> bool:
    import pyarrow.types as types

    return types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind)


def _is_number(kind) -> bool:
    import pyarrow.types as types

    if types.is_dictionary(kind):  # Feather keeps a dictionary-encoded column so; Parquet decodes it on reading
        kind = kind.value_type
    return types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind)


def _pandas_metadata(schema) -> dict:
    """The pandas metadata of a table's schema, or {} when there is none or it is not a JSON object."""
    import json

    text = (schema.metadata or {}).get(b"pandas")
    if text is None:
        return {}
    try:
        metadata = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _index_columns(schema, index_col: bool | None = None) -> list[str]:
    """The row names' columns: every stored pandas index level, else the first column under ``--index-col``
    (polars and pyarrow store none: an id column is a column like any other), or a first column of text."""
    if stored := _stored_index(schema):
        return stored
    if index_col is not None:
        return [schema.names[0]] if index_col and len(schema.names) > 1 else []
    return [schema.names[0]] if _is_text(schema.field(0).type) else []


def _stored_index(schema) -> list[str]:
    """The pandas index levels stored as columns (a RangeIndex is kept in the metadata only)."""
    levels = _pandas_metadata(schema).get("index_columns")
    return [name for name in (levels if isinstance(levels, list) else []) if isinstance(name, str) and name in schema.names]


def _index_name(schema, index: list[str]) -> str:
    """The row names' header as pandas' ``to_csv()`` writes it: each level's name ("" for an unnamed one, which
    pandas stores as ``__index_level_N__``), joined as the rows' levels are."""
    described = _pandas_metadata(schema).get("columns")
    fields = {entry["field_name"]: entry.get("name") for entry in (described if isinstance(described, list) else [])
              if isinstance(entry, dict) and isinstance(entry.get("field_name"), str)}
    names = [fields.get(name, name) for name in index]
    return join_levels(["" if not isinstance(name, str) or name.startswith("__index_level_") else name
                        for name in names])


def _names(column) -> list[str]:
    """Row names as pandas' ``to_csv()`` writes them (null as ""): dates at midnight as the date alone."""
    import datetime

    values = column.to_pylist()
    if all(isinstance(value, datetime.datetime) and value.tzinfo is None and value.time() == datetime.time()
           for value in values if value is not None):
        return ["" if value is None else value.date().isoformat() for value in values]
    return ["" if value is None else str(value) for value in values]


def _is_text(kind) -> bool:
    import pyarrow.types as types

    if types.is_dictionary(kind):  # pandas' and polars' categorical text
        kind = kind.value_type
    return types.is_string(kind) or types.is_large_string(kind) or types.is_string_view(kind)  # polars: a view


def _plan(schema, key: str | None, preferred: str, leave_out: str | None,
          index_col: bool | None) -> tuple[list[str], list[str]]:
    """The value columns to read (never ``leave_out``) and the row names' columns."""
    if not schema.names:
        raise InputError("the table has no columns")
    duplicated = sorted({name for name in schema.names if schema.names.count(name) > 1})
    if duplicated:
        raise InputError(f"column name(s) {', '.join(map(repr, duplicated))} given twice; each column needs "
                         "its own name")
    index = _index_columns(schema, index_col)
    candidates = [name for name in schema.names if name not in index and name != leave_out]
    if not candidates:
        raise InputError(f"no columns of numbers: {', '.join(map(repr, schema.names))} are row names")
    if key is not None or len(candidates) == 1 or preferred in candidates:
        name = pick_member(candidates, key, preferred)
        kind = schema.field(name).type
        if not (_is_number(kind) or _is_list(kind) and _is_number(kind.value_type)):
            raise InputError(f"column {name!r} holds {kind}, not numbers or lists of numbers; "
                             f"{_instead(schema, [name])}")
        return [name], index
    if preferred == "labels" and (refusal := label_column_among(candidates)):
        raise refusal  # a label column beside an id or a weight: the labels' column is the user's to name
    others = [name for name in candidates if not _is_number(schema.field(name).type)]
    labels = [name for name in others if is_label_name(name)]
    if labels:
        raise InputError(f"column {labels[0]!r} holds {schema.field(labels[0]).type}, as labels written as class "
                         f"names do, not logits; score against it with --labels-key {labels[0]} and this file as "
                         "--labels, or drop it from the table")
    if others:
        held = ", ".join(f"{name!r} ({schema.field(name).type})" for name in others)
        lists = [name for name in others if _is_list(kind := schema.field(name).type) and _is_number(kind.value_type)]
        advice = [_instead(schema, [name for name in others if name not in lists])]
        if lists:
            # "--key NAME" as such: labels are read with --labels-key, which labelsource puts in its place.
            advice.append(f"read one list column with --key NAME ({', '.join(lists)})")
        raise InputError(f"not numbers: column(s) {held} (of {', '.join(candidates)}); "
                         + "; ".join(filter(None, advice)))
    return candidates, index


def _labels_ids(schema, columns: list[str], index: list[str], key: str | None, preferred: str,
                leave_out: str | None) -> list[str]:
    """A first column of whole numbers beside the labels' column picked by ``--labels-key`` (pandas'
    ``reset_index()`` written with ``index=False``, polars' ``with_row_index()``): it names the rows when its
    numbers are distinct (checked once read), as in a CSV."""
    import pyarrow.types as types

    first = schema.names[0]
    if (index or key is None or preferred != "labels" or first in columns or first == leave_out
            or not types.is_integer(schema.field(0).type)):
        return []
    return [first]


def _instead(schema, names: list[str]) -> str:
    """What to do about columns that are neither numbers nor lists of them, as they hold."""
    import pyarrow.types as types

    advice = []
    if decimals := [name for name in names if types.is_decimal(schema.field(name).type)]:
        advice.append(f"cast {', '.join(map(repr, decimals))} to float before writing (pandas: df.astype(float); "
                      "pyarrow: pyarrow.compute.cast(column, pyarrow.float64()))")
    if texts := [name for name in names if _is_text(schema.field(name).type)]:
        first = texts[0]
        # --index-col reads the first column as row names only where the file stores no pandas index.
        name_rows = ("--index-col reads it as the row names" if first == schema.names[0] and not _stored_index(schema)
                     else f"write it as the first column or the index (pandas: df.set_index({first!r})) "
                          "to name the rows with it")
        advice.append(f"{first!r} holds text: {name_rows}, or drop it from the table")
    if others := [name for name in names if name not in decimals and name not in texts]:
        advice.append(f"drop {', '.join(map(repr, others))} from the table, or write numbers in it")
    return "; ".join(advice)


def _values(column, name: str, preferred: str = "logits") -> np.ndarray:
    """One column of a row group as NumPy: numbers, or lists of equal length as rows; a null is refused with
    what stands for a missing value where ``preferred`` says what is read (a masked logit, a missing label)."""
    import pyarrow.compute as compute
    import pyarrow.types as types

    if hasattr(column, "combine_chunks"):
        column = column.combine_chunks()
    if types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if column.null_count:
        raise InputError(f"column {name!r} has missing values (null); write {missing_value(preferred)}")
    if not _is_list(column.type):
        return column.to_numpy(zero_copy_only=False)
    lengths = compute.list_value_length(column).to_numpy(zero_copy_only=False)
    width = int(lengths[0]) if len(lengths) else 0
    if len(lengths) and (lengths != width).any():
        row = int(np.argmax(lengths != width))
        raise InputError(f"lists of unequal lengths in column {name!r}: {lengths[row]} in a row where the first "
                         f"has {width}")
    values = column.flatten()
    if values.null_count:
        raise InputError(f"column {name!r} has missing values (null) in its lists")
    return values.to_numpy(zero_copy_only=False).reshape(len(column), width)


def _numpy_dtype(kind) -> np.dtype:
    import pyarrow.types as types

    if types.is_dictionary(kind):
        kind = kind.value_type
    return np.dtype((kind.value_type if _is_list(kind) else kind).to_pandas_dtype())


def _table(schema, parts: Callable[[list[str]], Iterable], n_rows: int | None, key: str | None,
           preferred: str, source: Source) -> Table:
    """The table from ``parts(columns)``: its row groups or batches, in order, as ``source`` asks (no
    column ``leave_out``; the first as row names under ``--index-col``)."""
    columns, index = _plan(schema, key, preferred, source.leave_out, source.index_col)
    ids = _labels_ids(schema, columns, index, key, preferred, source.leave_out)
    index = index or ids
    dtype = np.result_type(*(_numpy_dtype(schema.field(name).type) for name in columns))
    pieces, rows, filled = [], [], 0
    array = np.empty((n_rows, len(columns)), dtype) if n_rows is not None and len(columns) > 1 else None
    for part in parts(columns + index):
        if array is not None:  # classes as columns: each goes straight into its place
            for j, name in enumerate(columns):
                array[filled : filled + part.num_rows, j] = _values(part.column(name), name, preferred)
        else:
            pieces.append(_values(part.column(columns[0]), columns[0], preferred) if len(columns) == 1
                          else np.column_stack([_values(part.column(name), name, preferred) for name in columns]))
        if index:
            rows += zip(*(_names(part.column(name)) for name in index))
        filled += part.num_rows
    if array is None:
        array = np.concatenate(pieces) if pieces else np.empty((0, len(columns)), dtype)
        if len(columns) == 1 and array.ndim == 2 and not _is_list(schema.field(columns[0]).type):
            array = array.reshape(-1)
    if ids and not distinct_ids([name for name, in rows]):
        index, rows = [], []
    classes = columns if len(columns) > 1 else None
    ranged = None if index else _range_index(schema, len(array))
    default = ranged == [str(position) for position in range(len(array))]
    return Table(array.astype(dtype, copy=False), classes,
                 joined_rows(rows) if index else None if default else ranged,
                 index_name=_index_name(schema, index) if index else None, range_rows=default,
                 first_column_as_rows=not _stored_index(schema))


def _range_index(schema, count: int) -> list[str] | None:
    """The row names of a RangeIndex the pandas metadata holds (``pd.read_parquet`` gives it back): the default
    0..count-1, or another start and step (``df.iloc[5:]``, ``df.iloc[::-1]``)."""
    levels = _pandas_metadata(schema).get("index_columns")
    if not (isinstance(levels, list) and len(levels) == 1 and isinstance(levels[0], dict)
            and levels[0].get("kind") == "range"):
        return None
    bounds = [levels[0].get(name) for name in ("start", "stop", "step")]
    if not all(isinstance(bound, int) and not isinstance(bound, bool) for bound in bounds) or bounds[2] == 0:
        return None
    names = range(*bounds)
    return [str(name) for name in names] if len(names) == count else None


# What a reader opens: the schema, the parts (row groups or record batches) of some columns, the row count.
Opened = tuple[object, Callable[[list[str]], Iterable], "int | None"]


def _parquet(source: Source, pa) -> Opened:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(source.path if source.path is not None else pa.BufferReader(source.data))
    _check_row_groups(file.metadata)

    def parts(columns):
        return (file.read_row_group(i, columns=columns) for i in range(file.num_row_groups))

    return file.schema_arrow, parts, file.metadata.num_rows


def _check_row_groups(metadata) -> None:
    """Refuse a row group that counts fewer rows than its flat columns hold values: pyarrow would read the
    rows it counts and drop the others unseen."""
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        for j in range(group.num_columns):
            chunk = group.column(j)
            # A list column's chunk counts its elements, not rows; a flat one holds a value (or null) a row.
            if metadata.schema.column(j).max_repetition_level == 0 and chunk.num_values != group.num_rows:
                raise InputError(f"row group {i} declares {group.num_rows} rows, but its column "
                                 f"{chunk.path_in_schema!r} holds {chunk.num_values} values; the file is damaged: "
                                 "write it again from its source")


def _arrow(source: Source, pa) -> Opened:
    """The Arrow IPC file format (Feather v2), or its stream format (as Hugging Face datasets cache)."""
    if source.head.startswith(FEATHER_V1_MAGIC):  # no IPC framing: pyarrow's Feather reader knows it
        import pyarrow.feather as feather

        whole = feather.read_table(str(source.path) if source.path is not None else pa.BufferReader(source.data))
        return whole.schema, lambda columns: whole.select(columns).to_batches(), whole.num_rows
    data = pa.memory_map(str(source.path)) if source.path is not None else pa.BufferReader(source.data)
    try:
        reader = pa.ipc.open_file(data)
    except pa.ArrowInvalid:  # not the file format: the stream format, read in one pass
        data.seek(0)
        stream = pa.ipc.open_stream(data)
        return stream.schema, lambda columns: (batch.select(columns) for batch in stream), None
    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]  # memory-mapped, not copied
    return reader.schema, lambda columns: (batch.select(columns) for batch in batches), sum(
        batch.num_rows for batch in batches)


def _read(source: Source, read: Callable[[Opened], Table | None], parquet: bool) -> Table | None:
    """``read`` of the Parquet (else Arrow) table ``source`` holds, its faults in one line."""
    pa = _pyarrow()
    try:
        schema, parts, n_rows = (_parquet if parquet else _arrow)(source, pa)
        return read((schema, lambda columns: _declared(parts(columns), n_rows), n_rows))
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"cannot read this {'Parquet' if parquet else 'Arrow'} file: {error}") from None


def _declared(parts: Iterable, n_rows: int | None) -> Iterator:
    """The parts, until they hold more than the ``n_rows`` the file declares; refused at the end unless they
    hold exactly that many (a damaged footer). The array of ``n_rows`` a reader fills is thus never overrun,
    and none of it left unfilled reaches a result."""
    held = 0
    for part in parts:
        held += part.num_rows
        if n_rows is None or held <= n_rows:
            yield part
    if n_rows is not None and held != n_rows:
        raise InputError(f"the file declares {n_rows} rows, but its data hold {held}; the file is damaged: "
                         "write it again from its source")


def read_parquet(source: Source, key: str | None, preferred: str) -> Table:
    return _read(source, lambda opened: _table(*opened, key, preferred, source), parquet=True)


def read_arrow(source: Source, key: str | None, preferred: str) -> Table:
    return _read(source, lambda opened: _table(*opened, key, preferred, source), parquet=False)


def read_names(source: Source, key: str | None) -> Table | None:
    """The text column ``key`` (class-name labels, ``--labels-key``; without it, the table's only column) as an
    array of str, with the row names; None when it holds numbers, which :func:`read_parquet` reads."""
    def read(opened: Opened) -> Table | None:
        schema, parts, _ = opened
        # Without key, a table of one text column (beside a stored pandas index) is the labels.
        columns = [name for name in schema.names if name not in _stored_index(schema)]
        if len(columns) > 1:  # beside a first column of text, which names the rows (an id)
            columns = [name for name in columns if name not in _index_columns(schema)]
        name = key if key is not None else columns[0] if len(columns) == 1 else None
        if name not in schema.names or not _is_text(schema.field(name).type):
            return None
        index = [column for column in _index_columns(schema) if column != name]
        values, rows = [], []
        for part in parts([name, *index]):
            column = part.column(name)
            if column.null_count:
                raise InputError(f"column {name!r} has missing values (null)")
            values += [str(value) for value in column.to_pylist()]
            rows += zip(*(_names(part.column(level)) for level in index))
        return Table(np.array(values), rows=joined_rows(rows) if index else None)

    return _read(source, read, parquet=source.head.startswith(b"PAR1"))


# ---------------------------------------------------------------- writing

def _batches(result, pa) -> tuple[object, Iterator]:
    """The tidy table's schema (scalars in its metadata) and its record batches."""
    from .. import tidy

    table = tidy.tidy(result)
    if table.left_out:
        note(f"{', '.join(table.left_out)} left out of the table (their rows differ); -f npz or json "
             "holds every result")
    fields = []
    for group in table.groups:
        dtype = np.dtype(np.float32) if is_bfloat16(group.values.dtype) else group.values.dtype
        kind = pa.string() if dtype.kind == "U" else pa.from_numpy_dtype(dtype)
        fields += [pa.field(name, kind) for name in group.names]
    metadata = {name: str(number_strings(np.asarray(value), None)) for name, value in table.scalars.items()}
    if provenance := result.metadata():  # what produced it and the gates' verdicts, as JSON under "softmax"
        import json

        metadata["softmax"] = json.dumps(provenance)
    schema = pa.schema(fields, metadata=metadata or None)

    def batches() -> Iterator:
        for chunk in tidy.row_chunks(table):
            columns = [block[:, j].astype(np.float32) if is_bfloat16(block.dtype) else block[:, j]
                       for block in chunk for j in range(block.shape[1])]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return schema, batches()


def _gathered(batches: Iterator, pa) -> Iterator:
    """Batches joined into tables of about :data:`WRITE_BATCH_BYTES`."""
    held, size = [], 0
    for batch in batches:
        held.append(batch)
        size += batch.nbytes
        if size >= WRITE_BATCH_BYTES:
            yield pa.Table.from_batches(held)
            held, size = [], 0
    if held:
        yield pa.Table.from_batches(held)


def write_parquet(result, stream: BinaryIO, options: WriteOptions) -> None:
    """The tidy table (:mod:`softmax_cli.tidy`), its scalars as text in the schema metadata."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    schema, batches = _batches(result, pa)
    with pq.ParquetWriter(stream, schema) as writer:
        for table in _gathered(batches, pa):
            writer.write_table(table)


def write_arrow(result, stream: BinaryIO, options: WriteOptions) -> None:
    """The tidy table as an Arrow IPC file (Feather v2), scalars as text in the schema metadata."""
    pa = _pyarrow()
    schema, batches = _batches(result, pa)
    with pa.ipc.new_file(stream, schema) as writer:
        for table in _gathered(batches, pa):
            writer.write_table(table)

