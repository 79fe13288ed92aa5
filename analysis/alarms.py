"""Alarm episodes as detection evidence: an alarm that fires shortly after a production deployment of
its service points at that deployment."""

from __future__ import annotations

import pandas as pd

DEFAULT_WITHIN = pd.Timedelta(hours=1)


def link_alarms(deployments: pd.DataFrame, alarms: pd.DataFrame, within: pd.Timedelta = DEFAULT_WITHIN) -> pd.DataFrame:
    """`alarms` with `deployment_id` and `since_deployment`: the latest production deployment of the
    episode's service that finished at or before the episode started, at most `within` earlier (else
    missing). `deployments` needs id, service, finished_at (and `production`, when given, is honoured);
    `alarms` needs service and started_at."""
    deps = deployments
    if "production" in deps.columns:
        deps = deps[deps["production"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    deps = deps.loc[deps["finished_at"].notna() & deps["service"].notna(), ["id", "service", "finished_at"]]
    deps = deps.astype({"service": object}).sort_values(["finished_at", "id"], kind="stable")
    rows = alarms[["service", "started_at"]].reset_index(drop=True)  # positions: any index will do
    episodes = rows[rows["started_at"].notna() & rows["service"].notna()].astype({"service": object})
    episodes = episodes.assign(_row=episodes.index).sort_values("started_at", kind="stable")
    linked = pd.merge_asof(
        episodes,
        deps,
        left_on="started_at",
        right_on="finished_at",
        by="service",
        direction="backward",
        tolerance=within,
    ).set_index("_row")
    positions = pd.RangeIndex(len(alarms))
    out = alarms.copy()
    out["deployment_id"] = linked["id"].reindex(positions).to_numpy()
    out["since_deployment"] = (linked["started_at"] - linked["finished_at"]).reindex(positions).to_numpy()
    return out
