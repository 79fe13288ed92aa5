"""Text files as users save them: UTF-8 (a BOM dropped), or UTF-16 or UTF-32 told by their byte-order
mark (what Windows editors and PowerShell's `>` write); why a path cannot be read, in words."""

from __future__ import annotations

import codecs
import io
import os
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "encoding_label",
    "file_encoding",
    "file_problem",
    "one_line",
    "read_problem",
    "text_encoding",
    "text_stream",
]

# UTF-32's marks first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def text_encoding(head: bytes) -> str:
    """The codec for text starting with the bytes `head`: the one its byte-order mark names (the mark
    is dropped when decoding), else UTF-8."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return "utf-8-sig"


def file_encoding(path: str | os.PathLike[str]) -> str:
    """The codec for the text file at `path` (see `text_encoding`); OSError when it cannot be read."""
    with open(path, "rb") as file:
        return text_encoding(file.read(4))


def encoding_label(encoding: str) -> str:
    """How messages name a codec from `text_encoding`: UTF-8, UTF-16 or UTF-32."""
    return encoding.removesuffix("-sig").upper()


def text_stream(binary: BinaryIO) -> io.TextIOWrapper:
    """`binary` read as text in the encoding its byte-order mark names (newlines kept as written). Bytes
    that are not UTF-8 in a UTF-8 stream are kept as surrogate escapes; broken UTF-16/32 raises
    UnicodeDecodeError when read."""
    peek = getattr(binary, "peek", None)
    encoding = text_encoding(peek(4)[:4] if peek else b"")
    errors = "surrogateescape" if encoding == "utf-8-sig" else "strict"
    return io.TextIOWrapper(binary, encoding=encoding, errors=errors, newline="")


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be read as a file (no such file, a directory, not a regular file), or None."""
    file = Path(path)
    try:
        if file.is_file():
            return None
        if file.is_dir():
            return "a directory, not a file"
        return "not a regular file" if file.exists() else "no such file"
    except OSError as exc:  # e.g. a name too long for the file system
        return f"cannot be read ({exc.strerror or exc})"


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a parser's may span several)."""
    return " ".join(str(exc).split()) or exc.__class__.__name__


def read_problem(exc: Exception) -> str:
    """Why a file could not be read or parsed, on one line."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not a {encoding_label(exc.encoding)} text file ({exc.reason})"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or exc})"
    return one_line(exc)
