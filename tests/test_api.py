"""The service API: every public name resolves and is documented in the README, names load on first use
(a surface imports only what it calls), and the use cases give what the lower layers compute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gatewatch import api

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves_and_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :]
    section = section[: section.index("\n## ", 5)]
    missing = [name for name in api.__all__ if f"`{name}`" not in section]
    assert missing == []
    for name in api.__all__:
        assert getattr(api, name) is not None
    assert sorted(dir(api)) == sorted(api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'load_frames'"):
        api.load_frames  # noqa: B018


def _imported_after(code: str) -> dict[str, bool]:
    probe = (
        f"import sys\n{code}\n"
        "print({m: m in sys.modules for m in ('pandas', 'scipy', 'sqlalchemy', 'gatewatch.services.canary')})"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return eval(out.stdout)


def test_names_load_on_first_use():
    assert _imported_after("from gatewatch import api") == {
        "pandas": False,
        "scipy": False,
        "sqlalchemy": False,
        "gatewatch.services.canary": False,
    }
    # The DORA report loads the delivery analytics, not the canary statistics (scipy).
    after = _imported_after("from gatewatch import api\napi.dora_report")
    assert after["pandas"] and not after["scipy"] and not after["gatewatch.services.canary"]
    assert _imported_after("from gatewatch import api\napi.run_canary")["scipy"]
