"""Loader details the analysis tests do not reach: the loose-index-scan DISTINCT behind the
dashboard's filter choices agrees with SELECT DISTINCT on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from collector.db import bulk_insert, write_transaction
from collector.loaders import load_filter_options
from collector.models import deployments


def _deployment(i: int, finished: datetime, **extra) -> dict:
    return {"id": f"d{i:05d}", "source": "test", "service": "api", "team": None, "environment": "production",
            "production": True, "status": "success", "status_at": finished, "started_at": finished,
            "finished_at": finished, "version": None, "revision": None, "pipeline_run_id": None,
            "rollback_of": None, "is_rollback": False, "hotfix": False, "url": None, **extra}


def test_filter_options_match_select_distinct(engine):
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [_deployment(i, base + timedelta(hours=i), service=[None, "web", "api", "Api", "z-last"][i % 5],
                        team=[None, "core", "front"][i % 3], environment=["production", "staging", None][i % 3])
            for i in range(60)]
    with write_transaction(engine) as conn:
        bulk_insert(conn, deployments, rows)
    options = load_filter_options(engine)
    d = deployments
    with engine.connect() as conn:
        for key, column in (("services", d.c.service), ("teams", d.c.team), ("environments", d.c.environment)):
            distinct = conn.execute(select(column).where(column.is_not(None)).distinct()).scalars().all()
            assert options[key] == sorted(distinct), key
        assert conn.execute(select(func.count(d.c.service.distinct()))).scalar_one() == 4
    assert options["services"] == sorted(["web", "api", "Api", "z-last"])
    assert options["teams"] == ["core", "front"] and options["environments"] == ["production", "staging"]


def test_filter_options_of_an_empty_store(engine):
    assert load_filter_options(engine) == {"services": [], "teams": [], "environments": []}


def test_epoch_microseconds_become_exact_utc_timestamps():
    """PostgreSQL hands `_raw` timestamps over as integer microseconds (floats once a NULL is there)."""
    import numpy as np
    import pandas as pd

    from collector.loaders import _utc_timestamps

    at = datetime(2024, 10, 2, 23, 0, 52, 800001, tzinfo=timezone.utc)
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    for values in (pd.Series([micros, micros + 1]), pd.Series([micros, None], dtype=object),
                   pd.Series([float(micros), np.nan])):
        stamps = _utc_timestamps(values)
        assert str(stamps.dtype) == "datetime64[us, UTC]"
        assert stamps.iloc[0] == pd.Timestamp(at)
        assert pd.isna(stamps.iloc[1]) if values.isna().any() else stamps.iloc[1] == pd.Timestamp(at) + pd.Timedelta(1, "us")
