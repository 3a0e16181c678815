"""The one table of file formats: names, extensions, magic bytes, and the module that implements each.

Everything that maps a file to a format asks here: reading a file by its
extension, sniffing standard input, ``-o`` inference, the ``-f`` choices
(:class:`softmax_cli.render.OutputFormat` is built from :data:`WRITERS`),
batch output naming, the accepted suffixes, and the format table of docs/inputs-and-outputs.md
(``tests/formats/test_formats.py`` checks that table against :data:`FORMATS`).

The table is data: a :class:`Format` names the functions of its module that
read, write, sniff and stream it, and the module (which imports NumPy, and
pyarrow or ml_dtypes when they are needed) is imported only when one of them
is called. Start-up, ``--help`` and the ``-f`` choices cost no format module;
``softmax probs 3 2 1 -f csv`` imports the text module alone. A format
module may import this one at its top (``describe_content``): nothing here
imports a format module at import time.

Adding a format is one new module, one line here, and its tests::

    # softmax_cli/formats/parquet.py (a docstring saying what it owns, then:)
    def read_parquet(source, key, preferred):
        import pyarrow.parquet  # optional libraries are imported only when used
        ...                     # -> Table(array, class names, row names)

    # here: one more entry in FORMATS
    Format("parquet", (".parquet",), "parquet", binary=True, magic=b"PAR1", reads="read_parquet",
           writes="write_parquet"),

    # tests/formats/test_format_binary_tables.py: files made by pyarrow itself; and a
    # docs/inputs-and-outputs.md table row (tests/formats/test_formats.py fails until it is there).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .base import Read, RowBlocks, Source, Table, Write


@dataclass(frozen=True, eq=False)  # one object per format, told apart by identity (``is``)
class Format:
    """One file format as declared here; its functions are looked up in ``module`` on first use.

    ``reads``, ``writes``, ``sniffs``, ``streams`` and ``reads_names`` name the
    module's functions (None: the format does not do that); :attr:`read`,
    :attr:`write`, :attr:`sniff`, :attr:`row_blocks` and :attr:`read_names` give the functions
    themselves, importing the module then. Ask the names (``fmt.writes is not
    None``) to decide something without importing it.

    ``read(source, key, preferred)`` gives a :class:`~.base.Table`;
    ``write(result, stream, options)`` writes a :class:`~softmax_cli.result.Result`
    to a binary stream when ``binary``, else to a text stream
    (:class:`~.base.WriteOptions`), an array with ``blocks()`` block by block;
    ``sniff(source)`` says whether standard input's content is this format;
    ``row_blocks(path, block_bytes, key)`` opens a file as streamable rows
    (:class:`~.base.FileRows`) or gives None when it must be read whole;
    ``read_names(source, key)`` gives a table's text column ``key`` as a
    :class:`~.base.Table` of str, or None when it is not text.
    """

    name: str
    extensions: tuple[str, ...]
    module: str  # in softmax_cli/formats/
    binary: bool
    reads: str | None = None
    writes: str | None = None
    magic: bytes | None = None  # how standard input is recognised: its first bytes
    sniffs: str | None = None  # or a test of its content
    streams: str | None = None
    reads_names: str | None = None  # a text column by name (class-name labels), where it is not a number's
    batch_output: str | None = None  # the format -o and a batch write for this extension (default: its own)

    def _function(self, name: str | None):
        return None if name is None else getattr(import_module(f"{__package__}.{self.module}"), name)

    @property
    def read(self) -> Read | None:
        return self._function(self.reads)

    @property
    def write(self) -> Write | None:
        return self._function(self.writes)

    @property
    def sniff(self) -> Callable[[Source], bool] | None:
        return self._function(self.sniffs)

    @property
    def read_names(self) -> Callable[[Source, str], Table | None] | None:
        return self._function(self.reads_names)

    @property
    def row_blocks(self) -> Callable[[Path, int, str | None], RowBlocks | None] | None:
        return self._function(self.streams)


# The order is the order standard input is sniffed in (magic bytes first) and
# suffixes are listed in messages. Binary formats come first, so a content test
# of text (JSON) never sees binary data.
FORMATS: tuple[Format, ...] = (
    Format("npy", (".npy",), "npy", binary=True, magic=b"\x93NUMPY", reads="read", writes="write",
           streams="row_blocks"),
    Format("npz", (".npz",), "npz", binary=True, magic=b"PK\x03\x04", reads="read", writes="write"),
    Format("safetensors", (".safetensors",), "safetensors", binary=True, reads="read", writes="write",
           sniffs="looks_like_safetensors", streams="row_blocks"),
    Format("parquet", (".parquet",), "parquet", binary=True, magic=b"PAR1", reads="read_parquet",
           writes="write_parquet", reads_names="read_names"),
    Format("arrow", (".arrow", ".feather"), "parquet", binary=True, magic=b"ARROW1", reads="read_arrow",
           writes="write_arrow", reads_names="read_names"),
    Format("csv", (".csv",), "text", binary=False, reads="read_table", writes="write_csv"),
    Format("tsv", (".tsv",), "text", binary=False, reads="read_table", writes="write_tsv"),
    # White-space text is read like the others; a batch writes it as TSV, the nearest format we write.
    # Standard input printed by Python or NumPy is read here too (tried before JSON, whose brackets it shares).
    Format("txt", (".txt",), "text", binary=False, reads="read_table", sniffs="looks_printed", batch_output="tsv"),
    Format("json", (".json",), "jsonfmt", binary=False, reads="read", writes="write", sniffs="looks_like_json",
           reads_names="read_names"),
    # JSON lines are read as rows; a batch writes them as JSON (itself JSON lines across a batch).
    Format("jsonl", (".jsonl", ".ndjson"), "jsonfmt", binary=False, reads="read_lines", batch_output="json"),
)

# Files that are pickles: loading one can run any code it holds, so they are never read.
PICKLES = (".pt", ".pth", ".bin", ".pkl", ".pickle")

# Standard input matching no magic and no sniff is delimited text of any separator.
STDIN_FALLBACK = "txt"

SUFFIXES: tuple[str, ...] = tuple(suffix for fmt in FORMATS for suffix in fmt.extensions)

# The formats a result can be written in: text ones first, the order of the -f choices.
WRITERS: tuple[Format, ...] = tuple(sorted((fmt for fmt in FORMATS if fmt.writes), key=lambda fmt: fmt.binary))

_BY_NAME = {fmt.name: fmt for fmt in FORMATS}
_BY_SUFFIX = {suffix: fmt for fmt in FORMATS for suffix in fmt.extensions}


def named(name: str) -> Format:
    """The format called ``name`` (an ``-f`` choice other than ``table``)."""
    return _BY_NAME[name]


def by_suffix(path: str | Path) -> Format | None:
    """The format a file's extension (any case) says, or None."""
    return _BY_SUFFIX.get(Path(path).suffix.lower())


def refusal(path: str | Path) -> str | None:
    """Why a file is never read (a pickle), with how to save the logits safely; None for any other file."""
    if Path(path).suffix.lower() not in PICKLES:
        return None
    return ("a PyTorch or Python pickle is not read, because loading a pickle can run any code it holds; "
            "save the logits with safetensors.torch.save_file({'logits': t}, 'logits.safetensors') "
            "or np.save(t.numpy()) as .npy")


def is_zarr_array(path: str | Path) -> bool:
    """A folder that is a Zarr array (``.zarr``, or holding Zarr v3's ``zarr.json`` or v2's ``.zarray``)."""
    path = Path(path)
    return path.is_dir() and (path.suffix.lower() == ".zarr" or (path / "zarr.json").is_file()
                              or (path / ".zarray").is_file())


def zarr_group_arrays(path: str | Path) -> list[str] | None:
    """The arrays in a Zarr group (v3's ``zarr.json`` of node type ``group``, or v2's ``.zgroup``), by name;
    None when ``path`` is not a group."""
    import json

    path = Path(path)
    try:
        group = (path / ".zgroup").is_file() or json.loads((path / "zarr.json").read_bytes()).get("node_type") == "group"
    except (OSError, ValueError, AttributeError, RecursionError):  # no zarr.json, or not a JSON object
        group = False
    if not group:
        return None
    return sorted(entry.name for entry in path.iterdir()
                  if entry.is_dir() and ((entry / ".zarray").is_file() or (entry / "zarr.json").is_file()))


def zarr_refusal(path: str | Path, role: str) -> str:
    """Why the Zarr folder ``path`` cannot be read as ``role`` here: a group names its arrays; an array is
    read only as the logits, on a cluster."""
    arrays = zarr_group_arrays(path)
    if arrays is not None:
        named = ", ".join(str(Path(path) / name) for name in arrays[:4]) or "none"
        return f"this is a Zarr group, not an array; give one of its arrays ({named})"
    if role == "logits":
        return ("this is a Zarr array, which is read on a Dask cluster: add --scheduler local:1 (one worker on this "
                "machine) or save it as .npy")
    return (f"a Zarr array is read on a Dask cluster as the logits only, and the {role} are read by this process: "
            f"save them as .npy (np.save('{role}.npy', zarr.open_array(PATH)[:]))")


def sniff(source: Source) -> Format:
    """The format of standard input, or of a file without an extension, by its content.

    Magic bytes, then content tests, else delimited text.
    """
    for fmt in FORMATS:  # magic first, so binary data is never decoded as text
        if fmt.magic is not None and source.head.startswith(fmt.magic):
            return fmt
    for fmt in FORMATS:
        if fmt.sniffs is not None and fmt.sniff(source):
            return fmt
    return named(STDIN_FALLBACK)


def describe_content(head: bytes) -> str:
    """What a file's first bytes show it is, for a file whose name says otherwise."""
    for fmt in FORMATS:
        if fmt.magic is not None and head.startswith(fmt.magic):
            return f"{fmt.name} data (name it .{fmt.name})"
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data starting {head[:8]!r}"
    return "text"


def output_for_path(path: str | Path) -> Format | None:
    """The format written for ``path`` without ``-f``: its extension's own, or the nearest we write.

    ``-o out.txt`` and a batch's output for ``in.txt`` are both tsv (``.jsonl``: json).
    """
    fmt = by_suffix(path)
    if fmt is None:
        return None
    if fmt.batch_output:
        return named(fmt.batch_output)
    return fmt if fmt.writes is not None else None
