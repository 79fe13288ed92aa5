"""The dashboard's server process, as `gatewatch dashboard` runs it: `python -m dashboard.server run
dashboard/app.py [streamlit options]` warms up, then runs Streamlit's own command line in this process.

Warming up starts the worker process and imports what the pages import before the server listens,
so the first page view of a new server pays neither (the imports alone take 1.3-1.5 s in a new
interpreter; the worker's start about 0.9 s, which held back the previous period's report).
`streamlit run dashboard/app.py` works without it: the app starts the worker on its first run.
"""

from __future__ import annotations

import importlib
import logging
import sys

# The pages' modules and the services behind them (`gatewatch.api` loads those on first use).
PAGE_MODULES = (
    "pandas",
    "altair",
    "dashboard.data",
    "dashboard.canary_data",
    "dashboard.slo_data",
    "gatewatch.services.store",
    "gatewatch.services.delivery",
    "gatewatch.services.canary",
    "gatewatch.services.slos",
    "gatewatch.services.gates",
)


def warm_up(wait: bool = False) -> None:
    """Start the dashboard's worker process (in the background unless `wait`) and import the pages' modules."""
    from dashboard import workers

    if wait:
        workers.ready()
    else:
        workers.start()
    # Streamlit checks each cached function's options as it is defined, warning that there is no
    # runtime yet (there is none before the server starts); the caches are made when first called.
    import streamlit  # noqa: F401  (its loggers are made, with their levels, as it is imported)

    checks = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = checks.level
    checks.setLevel(logging.ERROR)
    try:
        for name in PAGE_MODULES:
            importlib.import_module(name)
    finally:
        checks.setLevel(level)
    from gatewatch.process import use_system_allocator

    use_system_allocator()


def main(argv: list[str] | None = None) -> None:
    """Warm up, then `streamlit ARGV...` in this process (its exit status is this process's)."""
    warm_up()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
