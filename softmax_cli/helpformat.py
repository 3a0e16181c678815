"""Help that reads at any terminal width: no word, option or path split across lines; examples wrapped at spaces.

Click's formatter wraps with Python's ``TextWrapper`` defaults: a word longer
than the column is cut anywhere (``torc`` / ``h.nn.functional``), a hyphenated
word or option is split at its hyphen (``--max-`` / ``kl``), and a ``\\b``
block (the examples) is never wrapped, so a terminal narrower than an example
cuts it mid-option. Here words are never broken (a word longer than the column
overflows it, whole), and an example longer than the width is continued at a
space with a shell ``\\`` so that it still runs when copied.
"""

from __future__ import annotations

import shutil
import textwrap

import typer

CONTINUATION = " \\"


class _Wrapper(textwrap.TextWrapper):
    """Never breaks a word, except one longer than a whole line: that one after a ``.``, ``/`` or ``|`` (a dotted
    name, a path, a list of choices)."""

    def _handle_long_word(self, reversed_chunks, cur_line, cur_len, width):
        chunk = reversed_chunks[-1]
        room = max(width - cur_len, 1)
        cut = max(chunk.rfind(mark, 0, room) for mark in "./|") + 1
        if cur_line or cut <= 0:  # start a new line, or put the unbreakable word there whole
            if not cur_line:
                cur_line.append(reversed_chunks.pop())
            return
        cur_line.append(chunk[:cut])
        reversed_chunks[-1] = chunk[cut:]


def _wrapper(width: int, initial: str = "", subsequent: str = "") -> textwrap.TextWrapper:
    return _Wrapper(max(width, 1), initial_indent=initial, subsequent_indent=subsequent,
                    break_long_words=False, break_on_hyphens=False, replace_whitespace=False)


def _example(line: str, indent: str, width: int) -> list[str]:
    """One example line (a command, maybe with a ``  # comment``), continued at spaces with `` \\`` past ``width``."""
    if len(line) <= width:
        return [line]
    code, hash_, comment = line.partition("  # ")
    code = code.rstrip()
    if hash_ and len(f"{code}  # {comment.strip()}") <= width:  # the padding that aligned the comments goes
        return [f"{code}  # {comment.strip()}"]
    lines = [f"{indent}# {comment.strip()}"] if hash_ else []
    words = code.split()
    current = indent
    for word in words:
        candidate = f"{current} {word}" if current.strip() else f"{current}{word}"
        if current.strip() and len(candidate) + len(CONTINUATION) > width:
            lines.append(current + CONTINUATION)
            current = f"{indent}    {word}"
        else:
            current = candidate
    return [*lines, current]


def wrap(text: str, width: int, indent: str = "") -> str:
    """``text``'s paragraphs filled to ``width`` (a ``\\b`` paragraph line by line, its indented lines as examples)."""
    paragraphs = []
    for paragraph in text.expandtabs().split("\n\n"):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == "\b":
            block = []
            for line in lines[1:]:
                stripped = line.lstrip()
                own = indent + line[: len(line) - len(stripped)]
                if own != indent:  # an indented line of a verbatim block: an example to run
                    block += _example(own + stripped, own, width)
                else:
                    block += _wrapper(width, own, own).wrap(stripped) or [""]
            paragraphs.append("\n".join(block))
        elif lines:
            stripped = lines[0].lstrip()
            own = indent + lines[0][: len(lines[0]) - len(stripped)]
            paragraphs.append(_wrapper(width, own, own).fill(" ".join(line.strip() for line in lines)))
    return "\n\n".join(paragraphs)


class HelpFormatter(typer.Context.formatter_class):
    """Click's help formatter, wrapping as :func:`wrap` does."""

    def write_text(self, text: str) -> None:
        self.write(wrap(text, self.width, " " * self.current_indent))
        self.write("\n")

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        prefix = "Usage: " if prefix is None else prefix
        head = f"{prefix:>{self.current_indent}}{prog} "
        self.write(_wrapper(self.width - self.current_indent, head, " " * len(head)).fill(args) + "\n")

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        col_max = min(col_max, self.width // 3)  # a narrow terminal keeps two thirds for the help
        first_col = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        for first, second in rows:
            if len(first) > self.width - self.current_indent:  # a term with a long list of choices
                indent = " " * self.current_indent
                first = "\n".join(_wrapper(self.width - self.current_indent).wrap(first)).replace("\n", "\n" + indent)
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            column = first_col + self.current_indent
            if max(map(len, second.split())) > self.width - column:
                # A word wider than the help column (a dotted name): the help goes under the term, less indented.
                column = self.current_indent + 4
                self.write("\n" + " " * column)
            elif "\n" not in first and len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + " " * column)
            lines = wrap(second, max(self.width - column, 10)).splitlines()
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{column}}{line}\n")


class HelpContext(typer.Context):
    """The context of every command of the app: its help wraps with :class:`HelpFormatter`."""

    formatter_class = HelpFormatter

    def make_formatter(self) -> HelpFormatter:
        # The terminal's width, up to 100 (Click stops at 80, so a 120-column terminal wrapped the examples),
        # and at least 30 (Click's 50 overflowed a narrower terminal).
        columns = self.terminal_width or shutil.get_terminal_size().columns
        return self.formatter_class(width=max(min(columns, self.max_content_width or 100) - 2, 30))
