"""Baseline and canary scopes as PromQL label matchers, parsed and re-rendered so that a scope can
never inject PromQL: `version="v1"`, `version="v2",region=~"eu-.*"`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from gatewatch.errors import ConfigError

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_scope(scope: str | Mapping[str, str]) -> list[tuple[str, str, str]]:
    """[(label, operator, value)] from matchers text or a {label: value} mapping."""
    if isinstance(scope, Mapping):
        out = []
        for label, value in scope.items():
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", str(label)):
                raise ConfigError(f"scope label {label!r}: expected a Prometheus label name")
            out.append((str(label), "=", str(value)))
        return out
    text = (scope or "").strip()
    out, position = [], 0
    while position < len(text):
        match = _MATCHER.match(text, position)
        if not match:
            raise ConfigError(
                f'scope {scope!r}: expected label matchers such as version="v1" or '
                'version="v2",region=~"eu-.*" (operators = != =~ !~, values in double quotes)'
            )
        value = re.sub(r"\\\\|\\\"|\\n", lambda m: _ESCAPES[m.group(0)], match.group(3))
        out.append((match.group(1), match.group(2), value))
        position = match.end()
        if match.group(4) == "" and position < len(text):
            raise ConfigError(f"scope {scope!r}: separate matchers with commas")
    if not out:
        raise ConfigError('scope: empty; give at least one label matcher such as version="v1"')
    return out


def render_scope(scope: str | Mapping[str, str]) -> str:
    """The scope as safely escaped PromQL matchers."""

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ", ".join(f'{label}{op}"{escape(value)}"' for label, op, value in parse_scope(scope))


def render_query(template: str, scope: str | Mapping[str, str]) -> str:
    """The query with its `{scope}` placeholder replaced by the escaped matchers."""
    if "{scope}" not in (template or ""):
        raise ConfigError(f"query {template!r}: expected a {{scope}} placeholder inside a selector's braces")
    return template.replace("{scope}", render_scope(scope))
