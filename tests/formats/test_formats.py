"""The format registry: the table in docs/inputs-and-outputs.md, stdin sniffing, -f/-o/--out-dir naming, and each format's round trip.

Bytes come from the real producers (``np.save``, ``np.savez``, ``json.dumps``);
a format added to the registry is picked up by every parametrised test here.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest

from softmax_cli.formats import registry
from softmax_cli.formats.base import Source, WriteOptions
from softmax_cli.render import OutputFormat
from softmax_cli.result import Result

README = Path(__file__).resolve().parents[2] / "docs" / "inputs-and-outputs.md"  # its format table


def readme_format_table() -> list[list[str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("| format | extensions |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def expected_row(fmt) -> list[str]:
    return [
        fmt.name,
        ", ".join(f"`{suffix}`" for suffix in fmt.extensions),
        "—" if fmt.magic is None else f"`{repr(fmt.magic)[2:-1]}`",
        "yes" if fmt.reads else "no",
        "yes" if fmt.writes else f"no (-o and a batch write {fmt.batch_output})" if fmt.batch_output else "no",
        "yes" if fmt.streams else "no",
    ]


def test_readme_format_table_is_the_registry():
    assert readme_format_table() == [expected_row(fmt) for fmt in registry.FORMATS]


def test_every_function_the_registry_names_is_in_its_module():
    for fmt in registry.FORMATS:
        module = import_module(f"softmax_cli.formats.{fmt.module}")
        for name in (fmt.reads, fmt.writes, fmt.sniffs, fmt.streams):
            assert name is None or callable(getattr(module, name)), (fmt.name, name)


def _imported_after(statement: str) -> list[str]:
    """The format modules and NumPy that ``statement`` imports in a fresh interpreter."""
    completed = subprocess.run([sys.executable, "-c", f"import sys; {statement}; print(sorted(m for m in sys.modules "
                                "if m == 'numpy' or m.startswith('softmax_cli.formats.')))"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return ast.literal_eval(completed.stdout.strip())


def test_the_registry_imports_no_format_module_and_no_numpy():
    assert _imported_after("from softmax_cli.formats import registry; registry.WRITERS, registry.by_suffix('x.npz')") \
        == ["softmax_cli.formats.registry"]


@pytest.mark.parametrize("module", ["npy", "npz", "safetensors", "parquet", "text", "jsonfmt"])
def test_a_format_module_imported_first_has_no_cycle(module):
    """A format module imports the registry at its top; the registry imports it only when it is used."""
    assert f"softmax_cli.formats.{module}" in _imported_after(f"import softmax_cli.formats.{module}")


def test_no_two_formats_claim_an_extension_or_magic():
    suffixes = [suffix for fmt in registry.FORMATS for suffix in fmt.extensions]
    magics = [fmt.magic for fmt in registry.FORMATS if fmt.magic is not None]
    assert len(set(suffixes)) == len(suffixes) and len(set(magics)) == len(magics)
    assert all(suffix == suffix.lower() and suffix.startswith(".") for suffix in suffixes)
    assert registry.SUFFIXES == tuple(suffixes)  # in the format table's order


def test_format_choices_are_table_then_text_then_binary_writers():
    writers = [fmt for fmt in registry.FORMATS if fmt.writes]
    expected = ["table"] + [fmt.name for fmt in writers if not fmt.binary] + [fmt.name for fmt in writers if fmt.binary]
    assert [choice.value for choice in OutputFormat] == expected


def _saved(save) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "name"), [
    (_saved(lambda b: np.save(b, np.ones((2, 3), np.float32))), "npy"),
    (_saved(lambda b: np.savez(b, logits=np.ones(3))), "npz"),
    (json.dumps([[1, 2], [3, 4]]).encode(), "json"),
    (b"  \n" + json.dumps({"logits": [1, 2]}).encode(), "json"),
    (b"[1, 2]\n[3, 4]\n", "json"),  # JSON lines: the JSON reader falls back to them
    ("\ufeff[1, 2]".encode("utf-8"), "json"),  # a byte-order mark is not content
    (b"1,2,3\n4,5,6\n", "txt"),
    (b"a\tb\n1\t2\n", "txt"),
])
def test_standard_input_is_sniffed_by_the_registry(data, name):
    assert registry.sniff(Source(None, data)).name == name


@pytest.mark.parametrize(("suffix", "output"), [
    (".npy", "npy"), (".NPZ", "npz"), (".csv", "csv"), (".tsv", "tsv"), (".txt", "tsv"), (".json", "json"),
    (".jsonl", "json"), (".parquet", "parquet"), (".feather", "arrow"), (".safetensors", "safetensors"), (".pt", None),
])
def test_batch_naming_and_o_inference(suffix, output):
    by_output = registry.output_for_path(f"x{suffix}")
    assert (by_output and by_output.name) == output


def _written(fmt, result: Result) -> bytes:
    stream = io.BytesIO()
    if fmt.binary:
        fmt.write(result, stream, WriteOptions())
        return stream.getvalue()
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
    fmt.write(result, text, WriteOptions())
    text.flush()
    return stream.getvalue()


@pytest.mark.parametrize("fmt", [fmt for fmt in registry.WRITERS if fmt.reads], ids=lambda fmt: fmt.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_format_reads_back_what_it_writes(fmt, dtype):
    rng = np.random.default_rng(9)
    probs = rng.standard_normal((4, 3)).astype(dtype)
    classes = ["cat", "dog", "fish, striped"]
    data = _written(fmt, Result({"probs": probs}, classes=classes, header=classes))
    table = fmt.read(Source(None, data), None, "probs")
    array, read_classes = table.array, table.classes
    # Shortest round-trip text reads back to the same value of the written dtype.
    np.testing.assert_array_equal(array.astype(dtype), probs)
    assert array.dtype == dtype or not fmt.binary
    assert read_classes in (None, classes)
    # Piped to standard input, the same bytes are recognised and read back alike.
    sniffed = registry.sniff(Source(None, data)).read(Source(None, data), None, "probs").array
    np.testing.assert_array_equal(sniffed.astype(dtype), probs)


def test_labelled_text_output_still_reads_back():
    """A batch printed to one stream labels each result; the label is a comment or a member, not data."""
    result = Result({"probs": np.array([[0.25, 0.75]])})
    for name in ("csv", "tsv", "json"):
        fmt = registry.named(name)
        stream = io.StringIO()
        fmt.write(result, stream, WriteOptions(label="runs/a.npy"))
        array = fmt.read(Source(None, stream.getvalue().encode()), None, "probs").array
        np.testing.assert_array_equal(array.reshape(1, 2), [[0.25, 0.75]])
