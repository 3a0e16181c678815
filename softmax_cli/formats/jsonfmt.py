"""JSON (``.json``: nested lists, or an object of them) and JSON lines (``.jsonl``): read, and JSON written.

Named ``jsonfmt`` rather than ``json`` so that no module in this package
shadows the standard library's ``json``, which it imports. Reading names a bad
element by its JSON path (``[2][1]``) or line; writing gives one object per
result on one line (so a batch's results make JSON lines), with NaN and
infinities as ``null`` since JSON has neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

import numpy as np

from .. import tidy
from ..errors import InputError
from ..tidy import CHUNK_VALUES, chunk_rows
from .base import Source, Table, WriteOptions, distinct_ids, is_bfloat16, join_levels, label_column_among, number_strings, pick_member

# ---------------------------------------------------------------- reading

# Lists in our own JSON output that are not arrays: names, and what produced the result (Result.metadata).
NOT_ARRAYS = frozenset({"classes", "rows", "inputs", "gates"})
# Integers of up to this many digits fit int64; a longer one is read as the float it would become (past
# float64's range, inf), since Python refuses to convert one of over 4300 digits and NumPy keeps one
# past 64 bits as an object.
INT64_DIGITS = 18


def _integer(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= INT64_DIGITS else float(text)


def _object(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are each given once: Python keeps the last of two, silently."""
    value = dict(pairs)
    if len(value) != len(pairs):
        twice = next(key for position, (key, _) in enumerate(pairs) if key in (k for k, _ in pairs[:position]))
        raise InputError(f"a JSON object names {twice!r} twice; which one is meant? Keep one")
    return value


def _check_numbers(value, path: str) -> None:
    """Walk nested lists so a bad element is named by its path, e.g. ``[2][1]``."""
    import json

    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_numbers(item, f"{path}[{i}]")
    elif value is None:
        raise InputError("null is not a number; write -Infinity for a masked logit", where=path)
    elif not isinstance(value, (int, float)):
        raise InputError(f"{json.dumps(value)[:40]} is not a number", where=path)


def _array(value, path: str) -> np.ndarray:
    try:
        _check_numbers(value, path)
    except RecursionError:
        raise InputError("JSON nested too deeply", where=path or "top level") from None
    try:
        array = np.array(value)
    except ValueError:
        raise InputError("nested lists of unequal lengths", where=path or "top level") from None
    if array.dtype == object:
        raise InputError("nested lists of unequal lengths", where=path or "top level")
    return array


def _records(records: list[tuple[str, object]], key: str | None = None, preferred: str = "logits") -> Table:
    """Objects of one number per column, one a row (pandas' ``orient="records"``, polars' ``write_json`` and
    ``write_ndjson``): the columns are classes, named by the first record's keys, but for a first column of
    text, which names the rows (as in CSV); ``records`` pairs each with where it is (``[2]`` or ``line 3``).

    A column holding a list in each record (``{"id": ..., "logits": [...], "label": 2}``) is an array of its
    own: it is read (the only one, ``key`` or ``preferred``) unless ``key`` names a column of numbers.
    """
    import json

    first_where, first = records[0]
    names = list(first)
    if not names:
        raise InputError("a record with no columns", where=first_where)
    rows = []
    for where, record in records:
        if not isinstance(record, dict):
            raise InputError(f"{json.dumps(record)[:40]} where {first_where} is a record (an object)", where=where)
        if record.keys() != first.keys():
            odd = sorted(record.keys() ^ first.keys())[0]
            raise InputError(f"column {odd!r} is in one of this record and {first_where}, not both; every record "
                             "needs the same columns", where=where)
        rows.append([record[name] for name in names])
    lists = [name for name in names if isinstance(first[name], list)]
    if lists and key is None and preferred == "labels" and (refusal := label_column_among(names)):
        raise refusal
    if lists and (key is None or key in lists):
        name = pick_member(lists, key, preferred)
        column = names.index(name)
        text = next((j for j, other in enumerate(names) if all(isinstance(row[j], str) for row in rows)), None)
        return Table(_array([row[column] for row in rows], f"{first_where}[{json.dumps(name)}]"),
                     rows=None if text is None else [row[text] for row in rows])
    if lists:  # key names a column of numbers: the array columns are not part of it
        kept = [j for j, name in enumerate(names) if name not in lists]
        names, rows = [names[j] for j in kept], [[row[j] for j in kept] for row in rows]
    row_names = None
    if len(names) > 1 and all(isinstance(row[0], str) for row in rows):
        row_names, names, rows = [row[0] for row in rows], names[1:], [row[1:] for row in rows]
    for row, (where, _) in zip(rows, records):
        for name, value in zip(names, row):
            if isinstance(value, list):
                raise InputError("a list where a record holds one number a column", where=f"{where}[{json.dumps(name)}]")
            _check_numbers(value, f"{where}[{json.dumps(name)}]")
    return Table(_array(rows, ""), classes=names, rows=row_names,
                 index_name=None if row_names is None else list(first)[0])


def _columns(table: Table, key: str | None, leave_out: str | None, preferred: str = "logits") -> Table:
    """A JSON table's column ``key`` alone (``--labels-key``), or the table without the column ``leave_out``
    (the labels read from the same file); ``key`` must name a column. Beside the labels' column, a first column
    of distinct whole numbers (pandas' ``reset_index()``, polars' ``with_row_index()``) names the rows."""
    names = table.classes
    if names is None:  # a column of lists, already picked by key
        return table
    if key is None and preferred == "labels" and (refusal := label_column_among(names)):
        raise refusal
    if key is not None:
        if key not in names:
            raise InputError(f"no column named {key!r}; the columns are: {', '.join(names)}")
        rows = table.rows
        if rows is None and preferred == "labels" and names.index(key) > 0:
            first = table.array[:, 0]
            whole = [str(int(value)) for value in first if value == int(value)] if np.isfinite(first).all() else []
            rows = whole if len(whole) == len(first) and distinct_ids(whole) else None
        return Table(table.array[:, names.index(key)], rows=rows)
    if leave_out in names:
        kept = [j for j, name in enumerate(names) if name != leave_out]
        return Table(table.array[:, kept], classes=[names[j] for j in kept], rows=table.rows)
    return table


def _refuse_nested_objects(value: dict) -> None:
    """An object of objects (pandas' default ``to_json()``, ``orient="columns"``, or ``orient="index"``) does
    not say whether its outer keys are the rows or the columns; pandas' ``split`` and ``records`` do."""
    if value and all(isinstance(inner, dict) for inner in value.values()):
        raise InputError("an object of objects, as pandas' to_json() writes by default (orient='columns', or "
                         "orient='index'), does not say which keys are the classes; write it with "
                         "df.to_json(orient='split') or orient='records'")


def _split(value: dict, key: str | None = None, preferred: str = "logits") -> Table | None:
    """pandas' ``orient="split"``: ``columns`` (the classes), ``index`` (the row names) and ``data``; a column of
    lists in it (``{"logits": [...], "label": 2}`` rows) is read as records are (:func:`_records`)."""
    if not {"columns", "data"} <= value.keys() <= {"columns", "index", "data", "name"}:
        return None
    columns, index = value["columns"], value.get("index")
    if not isinstance(columns, list) or not isinstance(index, (list, type(None))):
        return None
    data = value["data"]
    if (isinstance(data, list) and data and all(isinstance(row, list) and len(row) == len(columns) for row in data)
            and any(isinstance(field, list) for field in data[0]) and all(isinstance(c, str) for c in columns)):
        return _records([(f"data[{i}]", dict(zip(columns, row))) for i, row in enumerate(data)], key, preferred)
    if (len(columns) > 1 and isinstance(data, list) and data and (index is None or index == list(range(len(data))))
            and all(isinstance(row, list) and row and isinstance(row[0], str) for row in data)):
        # A first column of text (an id) names the rows, as in records and CSV; the default index says nothing.
        index, columns, data = [row[0] for row in data], columns[1:], [row[1:] for row in data]
    array = _array(data, "data")
    if array.ndim != 2 or array.shape[1] != len(columns) or (index is not None and len(index) != len(array)):
        raise InputError(f"data of shape {array.shape} for {len(columns)} columns"
                         + (f" and {len(index)} index entries" if index is not None else ""), where="data")
    rows = None if index is None else _index_names(index)
    return Table(array, classes=[str(c) for c in columns], rows=rows)


def _table_schema(value: dict, key: str | None, preferred: str) -> Table | None:
    """pandas' ``orient="table"``: records under ``data``, the index's fields named by the schema's ``primaryKey``
    (the row names), the other fields the classes."""
    import dataclasses

    schema, data = value.get("schema"), value.get("data")
    if (value.keys() != {"schema", "data"} or not isinstance(schema, dict) or not isinstance(data, list) or not data
            or not all(isinstance(record, dict) for record in data)):
        return None
    levels = schema.get("primaryKey") or []
    if not isinstance(levels, list) or not all(isinstance(level, str) and level in data[0] for level in levels):
        return None
    table = _records([(f"data[{i}]", {name: item for name, item in record.items() if name not in levels})
                      for i, record in enumerate(data)], key, preferred)
    if not levels:
        return table
    return dataclasses.replace(table, rows=[join_levels([str(record.get(level)) for level in levels]) for record in data])


def _index_names(index: list) -> list[str]:
    """Row names from pandas' ``index`` in JSON: a MultiIndex entry is a list of its levels' values."""
    return [join_levels([str(level) for level in entry]) if isinstance(entry, list) else str(entry) for entry in index]


def _series_split(value: dict) -> tuple[list, list[str]] | None:
    """pandas' ``Series.to_json(orient="split")``: ``name``, ``index`` (the row names) and ``data``."""
    if not {"index", "data"} <= value.keys() <= {"name", "index", "data"}:
        return None
    data, index = value["data"], value["index"]
    if not isinstance(data, list) or not isinstance(index, list) or any(isinstance(item, list) for item in data):
        return None
    if len(index) != len(data):
        raise InputError(f"{len(data)} values for {len(index)} index entries", where="data")
    return data, _index_names(index)


def _flat_numbers(value: dict) -> Table | None:
    """An object of one number a key (pandas' ``Series.to_json()``, ``{"cat": 1.0, "dog": 2.0}``): a vector
    named by its keys, as ``Series.to_csv()`` is (class weights by name)."""
    if not value or not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value.values()):
        return None
    return Table(np.array(list(value.values())), rows=list(value))


def _own_rows(value: dict, array: np.ndarray) -> list[str] | None:
    """The row names of our own JSON output (``"rows"``), when they name this array's rows."""
    rows = value.get("rows")
    if isinstance(rows, list) and array.ndim and len(rows) == len(array) and all(isinstance(r, str) for r in rows):
        return rows
    return None


def parse_json(text: str, key: str | None, preferred: str, leave_out: str | None = None) -> Table:
    """Nested lists, an object of named nested lists (our own JSON output), records or pandas' ``split``
    layout (a table: ``key`` picks a column, ``leave_out`` drops one), or JSON lines."""
    import json

    try:
        value = json.loads(text, parse_int=_integer, object_pairs_hook=_object)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if len(lines) < 2:
            raise InputError(f"not valid JSON: {whole_error.msg}", line=whole_error.lineno, column=whole_error.colno) from None
        return parse_json_lines(text, key, leave_out, preferred)
    classes = None
    if isinstance(value, dict):
        if (split := _split(value, key, preferred)) is not None and (key is None or key in value["columns"]):
            return _columns(split, key, leave_out, preferred)
        if (table := _table_schema(value, key, preferred)) is not None:
            return _columns(table, key, leave_out, preferred)
        if (series := _series_split(value)) is not None and key in (None, "data", value.get("name")):
            return Table(_array(series[0], "data"), rows=series[1])
        _refuse_nested_objects(value)
        if key is None and (flat := _flat_numbers(value)) is not None:
            return flat
        names = [k for k, v in value.items() if isinstance(v, list) and k not in NOT_ARRAYS]
        name = pick_member(names, key, preferred)
        if isinstance(value.get("classes"), list):
            classes = [str(c) for c in value["classes"]]
        array = _array(value[name], f"{name}")
        return Table(array, classes, rows=_own_rows(value, array))
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _columns(_records([(f"[{i}]", record) for i, record in enumerate(value)], key, preferred), key,
                        leave_out, preferred)
    return Table(_array(value, ""), classes)


def read_names(source: Source, key: str | None) -> Table | None:
    """Class-name labels in JSON, with the row names where the layout has them: a list of text, a Series
    (``orient="split"``, or its default, an object of one name a row), an object's list (``key``), records
    (``orient="records"`` or ``"table"``: the column ``key``, or the one column that is not an id); None when
    the values are not text (they are read as numbers)."""
    import json

    try:
        value = json.loads(source.text, object_pairs_hook=_object)
    except (json.JSONDecodeError, RecursionError):
        return None
    rows = None
    if isinstance(value, dict) and (series := _series_split(value)) is not None:
        value, rows = series
    elif isinstance(value, dict) and value.keys() == {"schema", "data"} and isinstance(value["schema"], dict):
        levels = value["schema"].get("primaryKey") or []
        value, rows = _names_of_records(value["data"], key, levels if isinstance(levels, list) else [])
    elif isinstance(value, dict) and isinstance(value.get(key), list):
        value = value[key]
    elif isinstance(value, dict) and key is None and value and all(isinstance(name, str) for name in value.values()):
        value, rows = list(value.values()), list(value)
    elif isinstance(value, list) and value and all(isinstance(record, dict) for record in value):
        value, rows = _names_of_records(value, key, [])
    if not isinstance(value, list) or not value or not all(isinstance(name, str) for name in value):
        return None
    return Table(np.array(value), rows=rows)


def _names_of_records(records, key: str | None, levels: list) -> tuple[list | None, list[str] | None]:
    """The column ``key`` of records (without it, the one that is not an index level or a first id column of
    text), with the rows named by the index levels, or by that id column."""
    if not isinstance(records, list) or not records or not all(isinstance(record, dict) for record in records):
        return None, None
    fields = [name for name in records[0] if name not in levels]
    ids = levels or ([fields[0]] if len(fields) > 1 and all(isinstance(r.get(fields[0]), str) for r in records) else [])
    others = [field for field in fields if field not in ids]
    name = key if key is not None else others[0] if len(others) == 1 else None
    if name is None or not all(name in record for record in records):
        return None, None
    rows = [join_levels([str(record.get(level)) for level in ids]) for record in records] if ids and name not in ids else None
    return [record[name] for record in records], rows


def parse_json_lines(text: str, key: str | None = None, leave_out: str | None = None,
                     preferred: str = "logits") -> Table:
    """One JSON list per line, stacked into rows, or one record (an object) per line (:func:`_records`; ``key``,
    ``leave_out`` and ``preferred`` as for :func:`parse_json`)."""
    import json

    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_int=_integer, object_pairs_hook=_object)
        except RecursionError:
            raise InputError("JSON nested too deeply", line=line_no) from None
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON: {error.msg}", line=line_no, column=error.colno) from None
        rows.append((line_no, value))
    if not rows:
        raise InputError("no JSON lines found")
    if isinstance(rows[0][1], dict):
        return _columns(_records([(f"line {line_no}", value) for line_no, value in rows], key, preferred), key,
                        leave_out, preferred)
    rows = [(line_no, _array(value, f"line {line_no}")) for line_no, value in rows]
    shape = rows[0][1].shape
    for line_no, row in rows:
        if row.shape != shape:
            raise InputError(f"a list of shape {row.shape} where line {rows[0][0]} has {shape}", line=line_no)
    return Table(np.stack([row for _, row in rows]))


def read(source: Source, key: str | None, preferred: str) -> Table:
    return parse_json(source.text, key, preferred, source.leave_out)


def read_lines(source: Source, key: str | None, preferred: str) -> Table:
    return parse_json_lines(source.text, key, source.leave_out, preferred)


def looks_like_json(source: Source) -> bool:
    """Standard input whose text opens a list or an object (JSON lines open lists too)."""
    return source.text.lstrip()[:1] in ("[", "{")


# ---------------------------------------------------------------- writing

def _nested(strings: np.ndarray) -> str:
    if strings.ndim == 0:
        return str(strings)
    if strings.ndim == 1:
        return "[" + ",".join(strings.tolist()) + "]"
    return "[" + ",".join(_nested(part) for part in strings) + "]"


def _strings(array: np.ndarray, precision: int | None) -> np.ndarray:
    """Each element as JSON text; JSON has no NaN or infinity, so they are ``null``."""
    if array.dtype.kind == "U":  # class names
        import json

        quoted = [json.dumps(str(name)) for name in array.reshape(-1)]
        return np.array(quoted, dtype=object).reshape(array.shape).astype(str)
    strings = number_strings(array, precision)
    if array.dtype.kind == "f" or is_bfloat16(array.dtype):
        strings = np.where(np.isfinite(array), strings, "null")
    elif array.dtype.kind == "b":
        strings = np.where(array, "true", "false")
    return strings


def json_value(array: np.ndarray, precision: int | None) -> str:
    """A JSON number, string or nested lists."""
    return _nested(_strings(np.asarray(array), precision))


def _nested_chunks(array, precision: int | None) -> Iterator[str]:
    """Nested lists written row by row: brackets open and close where the row index rolls over.

    Only a bounded chunk of rows is text at any time, so a streamed array or
    millions of per-sample losses never become one string.
    """
    shape = tuple(array.shape)
    if len(shape) == 0 or 0 in shape:  # nothing large
        yield json_value(array.materialise() if hasattr(array, "blocks") else array, precision)
        return
    if len(shape) == 1 and not hasattr(array, "blocks"):
        yield "["
        for start in range(0, shape[0], CHUNK_VALUES):
            yield ("," if start else "") + ",".join(_strings(array[start : start + CHUNK_VALUES], precision).tolist())
        yield "]"
        return
    lead = shape[:-1]  # a streamed 1-D array is one row
    index = [0] * len(lead)
    first = True
    width = shape[-1]
    for chunk in tidy.rechunked(tidy.blocks_of(array, int(np.prod(lead, dtype=np.int64)), width), chunk_rows(width)):
        pieces = []
        for line in _strings(chunk, precision).tolist():
            opens = next((n for n, i in enumerate(reversed(index)) if i != 0), len(index))
            pieces.append(("" if first else ",") + "[" * opens + "[" + ",".join(line) + "]")
            first = False
            closes = 0
            for d in reversed(range(len(lead))):  # advance the row index like an odometer
                index[d] += 1
                if index[d] < lead[d]:
                    break
                index[d] = 0
                closes += 1
            pieces.append("]" * closes)
        yield "".join(pieces)


def json_lines(result, precision: int | None, label: str | None = None) -> Iterator[str]:
    """One JSON object on one line, so a batch's results make JSON lines (each with its ``source``)."""
    import json

    yield "{" if label is None else f'{{"source": {json.dumps(label)}, '
    for position, (name, value) in enumerate(result.arrays.items()):
        yield ("" if position == 0 else ", ") + f"{json.dumps(name)}: "
        yield from _nested_chunks(value, precision)
    if result.classes is not None:
        yield f', "classes": {json.dumps(result.classes)}'
    if result.rows is not None:
        yield f', "rows": {json.dumps(result.rows)}'
    for name, value in result.metadata().items():  # what produced it and what the gates decided
        yield f", {json.dumps(name)}: {json.dumps(value)}"
    yield "}\n"


def write(result, stream: TextIO, options: WriteOptions) -> None:
    """Every named array, scalar, the class names and the row names as one JSON object."""
    for chunk in json_lines(result, options.precision, options.label):
        stream.write(chunk)

