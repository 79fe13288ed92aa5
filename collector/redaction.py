"""Keeping secrets out of what Gatewatch shows, logs and stores: URLs with their credentials masked, and
free text (error messages, tracebacks, a receiver's answer) scrubbed of every secret value this
process has used, in any of the forms it may appear in (as sent, stripped, quoted, percent-encoded)."""

from __future__ import annotations

import re
import threading
import traceback
from urllib.parse import quote, unquote, urlsplit

__all__ = ["MASK", "mask_url", "remember", "remember_url_credentials", "scrub", "scrubbed_traceback"]

MASK = "***"
MIN_LENGTH = 4  # shorter values are not scrubbed from free text (they would mangle it); URLs mask any length
_LIMIT = 10_000  # distinct remembered values (a bound, not a cache: the first ones stay)

# scheme://user:password@ (the password may hold an unescaped @; the userinfo ends at the last @
# before the path), and a fallback up to the last @ anywhere when the password holds a / or ?
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:@/?#]*):(?P<password>[^/?#]*)@")
_USERINFO_LOOSE = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:@/?#]*):(?P<password>.*)@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;][^=&;#]*(?:token|passw|pwd|secret|key|signature|sig|auth|credential)[^=&;#]*=)(?P<value>[^&;#]*)",
    re.IGNORECASE,
)

_known: dict[str, str] = {}  # secret form -> what is shown instead
_lock = threading.Lock()


def mask_url(url: str) -> str:
    """`url` with the password of its userinfo and the values of credential-like query parameters
    (token, password, secret, key, signature...) replaced by ***, for messages, logs and stored rows."""
    masked = _USERINFO.sub(rf"\g<head>:{MASK}@", url, count=1)
    if masked == url and "@" in url:
        masked = _USERINFO_LOOSE.sub(rf"\g<head>:{MASK}@", url, count=1)
    return _QUERY_SECRET.sub(rf"\g<name>{MASK}", masked)


def remember(secret: str | None, shown: str = MASK) -> None:
    """Treat `secret` (and the forms derived from it) as secret from now on in this process: `scrub`
    replaces it by `shown` (e.g. the `${VAR}` it came from). A URL's credentials and, for a URL that
    is itself secret, its path, query and password are remembered too (not its host)."""
    if not secret:
        return
    forms = {secret: shown, secret.strip(): shown}
    for form in list(forms):
        forms[repr(form)[1:-1]] = shown
        forms[quote(form, safe="")] = shown
        forms[quote(form)] = shown
        forms[unquote(form)] = shown
    if "://" in secret:
        try:
            parts = urlsplit(secret.strip())
            pieces = [parts.path, parts.query, parts.fragment, parts.password or ""]
        except ValueError:
            pieces = []
        for piece in pieces:
            if len(piece) >= MIN_LENGTH and piece != "/":
                forms.setdefault(piece, MASK)
                forms.setdefault(unquote(piece), MASK)
    with _lock:
        for form, replacement in forms.items():
            if len(form) >= MIN_LENGTH and form != replacement and (form in _known or len(_known) < _LIMIT):
                _known[form] = replacement


def remember_url_credentials(url: str | None) -> None:
    """Remember the password and credential-like query values of `url` (a store or Prometheus URL)."""
    if not url:
        return
    for pattern in (_USERINFO, _USERINFO_LOOSE):
        if found := pattern.match(url):
            remember(unquote(found["password"]))
            remember(found["password"])
            break
    for found in _QUERY_SECRET.finditer(url):
        remember(unquote(found["value"]))
        remember(found["value"])


def scrub(text: str, extra: list[tuple[str, str]] | None = None) -> str:
    """`text` with every remembered secret (longest first) and each (secret, shown) of `extra` replaced."""
    with _lock:
        known = dict(_known)
    for secret, shown in extra or []:
        if len(secret) >= MIN_LENGTH:
            known.setdefault(secret, shown)
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, known[secret])
    return text


def scrubbed_traceback() -> str:
    """The exception being handled, formatted as a traceback and scrubbed (log it instead of `log.exception`)."""
    return scrub(traceback.format_exc().rstrip())
