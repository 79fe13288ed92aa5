"""How a received payload's text is checked, parsed and archived: the JSON nesting limit, bytes that are
not UTF-8, lone surrogates, values that are not objects, and the form `raw_events.payload` keeps them in.

`raw_events.payload` is text. A payload whose bytes the store cannot hold as text (not valid UTF-8, a NUL
byte) is kept as `base64:` followed by the base64 of its exact bytes; so is one that happens to start with
`base64:`, so reading the column back is never ambiguous. Texts here are decoded with `surrogateescape`:
a byte that is not UTF-8 is a surrogate U+DC80..U+DCFF, and encoding the same way gives the bytes back.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 512  # JSON nesting deeper than this is refused before parsing (Python's parser recurses)
ARCHIVE_PREFIX = "base64:"
_NESTING_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_NAMES = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
}


def payload_bytes(text: str) -> bytes:
    """The bytes a text was decoded from (with `surrogateescape`); a lone surrogate of another range as is."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def to_archive(text: str) -> str:
    """The form `raw_events.payload` keeps a payload in: the text itself, or `base64:` and its bytes."""
    if (text.isascii() or _encodes(text)) and "\x00" not in text and not text.startswith(ARCHIVE_PREFIX):
        return text
    return ARCHIVE_PREFIX + base64.b64encode(payload_bytes(text)).decode("ascii")


def from_archive(stored: str) -> str:
    """A payload's text from its archived form (undecodable bytes come back as surrogates)."""
    if stored.startswith(ARCHIVE_PREFIX):
        try:
            raw = base64.b64decode(stored[len(ARCHIVE_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            return stored  # archived before this form existed: the text itself
        return raw.decode("utf-8", "surrogateescape")
    return stored


def archive_head_chars(n: int) -> int:
    """How many characters of an archived payload to read to show its first `n` characters."""
    return len(ARCHIVE_PREFIX) + 4 * (n // 3 + 1)


def readable_head(stored: str, n: int) -> str:
    """The first `n` characters of an archived payload, its base64 form decoded (bad bytes shown as U+FFFD)."""
    if not stored.startswith(ARCHIVE_PREFIX):
        return stored[:n]
    encoded = stored[len(ARCHIVE_PREFIX) :]
    try:
        raw = base64.b64decode(encoded[: len(encoded) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return stored[:n]
    return raw.decode("utf-8", "replace")[:n]


def compact_json(value: Any) -> str:
    """A parsed value as compact JSON text, with escapes (`\\ud800`) where a string is not valid Unicode."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if text.isascii() or _encodes(text) else json.dumps(value, separators=(",", ":"), default=str)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit` (strings are skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string = 0, False
    for match in _NESTING_TOKENS.finditer(text):
        token = match.group()
        if token == '"':
            in_string = not in_string
        elif in_string or token[0] == "\\":
            continue
        elif token in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def loads(text: str) -> Any:
    """`json.loads` that refuses nesting deeper than MAX_DEPTH with a ValueError instead of recursing."""
    if too_deep(text):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than this server can parse (the limit is {MAX_DEPTH})") from None


def parse(text: str, parsed: Any = None) -> tuple[Any, str | None]:
    """(the payload, None), or (None, why it is quarantined): a body that is not UTF-8, empty, not JSON,
    nested too deep, holding a lone surrogate, or a JSON value that is not an object. `parsed` is the
    value when the reader already decoded it."""
    problem = encoding_problem(text)
    if problem:
        return None, problem
    payload = parsed
    if payload is None:
        if not text or text.isspace():
            return None, "body: empty (expected a JSON object)"
        try:
            payload = loads(text)
        except ValueError as exc:
            return None, f"body: expected JSON ({exc})"
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(exc.object[exc.start])
            return None, (
                f"body: a string holds a lone surrogate \\u{code:04x} (an escape without its pair), "
                "which is not valid Unicode"
            )
    if not isinstance(payload, Mapping):
        return None, f"body: expected a JSON object, got {_JSON_NAMES.get(type(payload), type(payload).__name__)}"
    return payload, None


def encoding_problem(text: str) -> str | None:
    """Why a text is not valid UTF-8 (the first byte that is not, or a lone surrogate), else None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code, offset = ord(text[exc.start]), len(text[: exc.start].encode("utf-8"))
        if 0xDC80 <= code <= 0xDCFF:  # a byte decoding could not take (surrogateescape)
            what = f"byte 0x{code - 0xDC00:02x} at offset {offset}"
        else:
            what = f"a lone surrogate U+{code:04X} at offset {offset}"
        return f"body: not valid UTF-8 ({what}); its bytes are stored as '{ARCHIVE_PREFIX}' and their base64"
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
