"""The "nothing escapes" contract as assertions, and damaged files made from the real producers.

Shared by ``test_escapes.py``, ``test_fuzz.py`` and ``fuzz/run.py``. Everything
here goes through the ``softmax`` command (a subprocess) or, for the in-process
fuzz, the Typer app found by :func:`softmax_app` alone, so that moving the app
is a one-line change.
"""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
from conftest import softmax_command

# Below what NumPy, the thread pools and a small input need (256 MiB runs every
# command here), far below what the oversized inputs of the tests would take.
MEMORY_LIMIT = 768 << 20

# Every command with a small input it accepts, for the stream and fault tests.
COMMANDS = {
    "probs": ["probs", "3", "2", "1"],
    "loss": ["loss", "3", "2", "1", "--labels", "0"],
    "grad": ["grad", "3", "2", "1", "--labels", "0"],
    "jacobian": ["jacobian", "3", "2", "1"],
    "temperature-sweep": ["temperature-sweep", "3", "2", "1"],
    "topk": ["topk", "3", "2", "1", "-k", "2"],
    "attention": ["attention", "1 0; 0 1", "1 0; 0 1", "1 2; 3 4"],
    "--help": ["--help"],
    "--version": ["--version"],
    "probs --help": ["probs", "--help"],
}


def softmax_app():
    """The Typer application behind the ``softmax`` command (the one import that may move)."""
    from softmax_cli.cli import app

    return app


def clean_env(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    environment.update(extra)
    return environment


def limit_memory(limit: int = MEMORY_LIMIT):
    """A ``preexec_fn`` capping the child's address space."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_bytes(*args, input: bytes | None = b"", env: dict | None = None, timeout: float = 60, **popen) -> \
        subprocess.CompletedProcess:
    """``softmax ARGS`` in a subprocess with bytes in and out; ``args`` may hold bytes (undecodable names)."""
    command = [*softmax_command(), *(a if isinstance(a, bytes) else str(a) for a in args)]
    if "stdin" in popen:
        input = None
    return subprocess.run(command, input=input, stdout=popen.pop("stdout", subprocess.PIPE),
                          stderr=popen.pop("stderr", subprocess.PIPE), env=clean_env(**(env or {})),
                          timeout=timeout, **popen)


def text_of(stream) -> str:
    if stream is None:
        return ""
    return stream.decode("utf-8", "replace") if isinstance(stream, bytes) else stream


def contract_violations(returncode: int, stdout, stderr) -> list[str]:
    """What breaks "exit 0, 1 (a failed gate) or 2 with one `error:` line, nothing else" (empty: none)."""
    out, err = text_of(stdout), text_of(stderr)
    problems = []
    if returncode < 0:
        problems.append(f"killed by signal {-returncode}")
    elif returncode not in (0, 1, 2):
        problems.append(f"exit status {returncode}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("a traceback")
    if "Warning" in err:
        problems.append("a raw warning on stderr")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if len(errors) > 1:
        problems.append(f"{len(errors)} error: lines")
    if returncode == 2:
        if len(err.splitlines()) != 1 or not errors:
            problems.append("exit 2 without exactly one line on stderr, an `error:` line")
        if out:
            problems.append("output on stdout with an error")
    if returncode == 1 and not any(line.startswith("gate failed:") for line in err.splitlines()):
        problems.append("exit 1 without a `gate failed:` line")
    if returncode == 0 and errors:
        problems.append("exit 0 with an error: line")
    return problems


def assert_contract(completed: subprocess.CompletedProcess, *, codes=(0, 1, 2)) -> None:
    problems = contract_violations(completed.returncode, completed.stdout, completed.stderr)
    last_line = (text_of(completed.stderr).strip().splitlines() or [""])[-1]
    assert not problems, (problems, completed.returncode, last_line, text_of(completed.stderr)[-2000:],
                          text_of(completed.stdout)[:300])
    assert completed.returncode in codes, (completed.returncode, last_line, text_of(completed.stdout)[:300])


def assert_refused(completed: subprocess.CompletedProcess) -> str:
    """Exit 2, one `error:` line on stderr, nothing on stdout."""
    assert_contract(completed, codes=(2,))
    return text_of(completed.stderr).strip()


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer left in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".part") or p.name.startswith(".")
                  or "tmp" in p.name)


# ---- damaged files, made by the real producers and then damaged deterministically ----

def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def with_npy_header(saved: bytes, header: str) -> bytes:
    """``saved`` (np.save output) with its header dictionary replaced by ``header`` (format 1.0, padded)."""
    header_len = struct.unpack("<H", saved[8:10])[0] if saved[6] == 1 else struct.unpack("<I", saved[8:12])[0]
    data = saved[(10 if saved[6] == 1 else 12) + header_len:]
    body = header.encode("latin1")
    padded = body + b" " * ((-(10 + len(body) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(padded)) + padded + data


def npz_bytes(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def rewrite_npz(saved: bytes, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    """An ``.npz`` (zip) like ``saved`` with the named members' bytes replaced."""
    source = zipfile.ZipFile(io.BytesIO(saved))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as target:
        for info in source.infolist():
            target.writestr(info.filename, members.get(info.filename, source.read(info.filename)),
                            compress_type=compression)
    return buffer.getvalue()


def set_encrypted_flag(archive: bytes) -> bytes:
    """Set bit 0 of the general-purpose flags in every local and central header."""
    data = bytearray(archive)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            data[at + flag_offset] |= 1
            start = at + 4
    return bytes(data)


def damage_deflate_stream(archive: bytes) -> bytes:
    """Overwrite the middle of the first member's compressed data (the zip's own CRC left as it was)."""
    info = zipfile.ZipFile(io.BytesIO(archive)).infolist()[0]
    local = info.header_offset
    name_len, extra_len = struct.unpack("<HH", archive[local + 26:local + 30])
    start = local + 30 + name_len + extra_len
    middle = start + info.compress_size // 2
    data = bytearray(archive)
    data[middle:middle + 16] = b"\xff" * 16
    return bytes(data)


def zip_member_of_zeros(name: str, header: str, n_bytes: int) -> bytes:
    """An ``.npz`` whose member is an ``.npy`` ``header`` followed by ``n_bytes`` zeros, deflated (a zip bomb)."""
    buffer = io.BytesIO()
    prefix = with_npy_header(npy_bytes(np.zeros(0)), header)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            member.write(prefix)
            block = bytes(1 << 22)
            for _ in range(n_bytes // len(block)):
                member.write(block)
    return buffer.getvalue()
