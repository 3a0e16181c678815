"""The one table of file formats: extensions, magic, names, in the order they are tried.

Everything that maps a file to a format asks here: reading a file by its
extension, sniffing standard input, ``-o`` inference, the ``-f`` choices
(:class:`softmax_cli.render.OutputFormat` is built from :data:`WRITERS`),
batch output naming, the accepted suffixes, and the format table of docs/inputs-and-outputs.md
(``tests/formats/test_formats.py`` checks that table against :data:`FORMATS`).

Adding a format is one new module, one line here, and its tests::

    # softmax_cli/formats/parquet.py (a docstring saying what it owns, then:)
    def read(source, key, preferred):
        import pyarrow.parquet  # optional libraries are imported only when used
        ...                     # -> Table(array, class names, row names)

    FORMATS = (Format("parquet", (".parquet",), binary=True, read=read, magic=b"PAR1"),)

    # here: one more import and one more entry
    from . import jsonfmt, npy, npz, parquet, text
    FORMATS = (*npy.FORMATS, *npz.FORMATS, *text.FORMATS, *jsonfmt.FORMATS, *parquet.FORMATS)

    # tests/formats/test_format_binary_tables.py: files made by pyarrow itself; and a
    # docs/inputs-and-outputs.md table row (tests/formats/test_formats.py fails until it is there).

Every module listed here is loaded on every start-up, so a format module
imports only NumPy and this package at its top.
"""

from __future__ import annotations

from pathlib import Path

from . import jsonfmt, npy, npz, parquet, safetensors, text
from .base import Format, Source

# The order is the order standard input is sniffed in (magic bytes first) and
# suffixes are listed in messages. Binary formats come first, so a content test
# of text (JSON) never sees binary data.
FORMATS: tuple[Format, ...] = (*npy.FORMATS, *npz.FORMATS, *safetensors.FORMATS, *parquet.FORMATS, *text.FORMATS,
                               *jsonfmt.FORMATS)

# Files that are pickles: loading one can run any code it holds, so they are never read.
PICKLES = (".pt", ".pth", ".bin", ".pkl", ".pickle")

# Standard input matching no magic and no sniff is delimited text of any separator.
STDIN_FALLBACK = "txt"

SUFFIXES: tuple[str, ...] = tuple(suffix for fmt in FORMATS for suffix in fmt.extensions)

# The formats a result can be written in: text ones first, the order of the -f choices.
WRITERS: tuple[Format, ...] = tuple(sorted((fmt for fmt in FORMATS if fmt.write), key=lambda fmt: fmt.binary))

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


ZARR_REFUSAL = ("this is a Zarr array, which is read on a Dask cluster: add --scheduler local:1 (one worker on this "
                "machine) or save it as .npy")


def sniff(source: Source) -> Format:
    """The format of standard input, or of a file without an extension, by its content.

    Magic bytes, then content tests, else delimited text.
    """
    for fmt in FORMATS:  # magic first, so binary data is never decoded as text
        if fmt.magic is not None and source.head.startswith(fmt.magic):
            return fmt
    for fmt in FORMATS:
        if fmt.sniff is not None and fmt.sniff(source):
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
    return fmt if fmt.write is not None else None
