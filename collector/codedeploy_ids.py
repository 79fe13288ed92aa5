"""The CodeDeploy deployment a gated deployment runs, found in the store: what `codedeploy_stop` stops
when neither the policy nor the caller names it. Two places hold it: the CodeDeploy action of the
deployment's CodePipeline run (its external execution id), and the CodeDeploy deployments projected
from stored CodeDeploy events and `collect codedeploy` (`codedeploy:{id}`) of the deployment's service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, literal, select

from .db import translates_store_errors
from .listings import ACTIVE_DEPLOYMENT, ACTIVE_RUN
from .models import action_runs, deployments

__all__ = ["FoundCodeDeploy", "find_codedeploy_deployment"]

PREFIX = "codedeploy:"


@dataclass(frozen=True)
class FoundCodeDeploy:
    """A CodeDeploy deployment id (None when none was found) and where it came from, or what was searched."""

    deployment_id: str | None
    how: str


@dataclass(frozen=True)
class _Candidate:
    deployment_id: str
    running: bool
    at: datetime | None


def _pick(found: list[_Candidate], where: str) -> FoundCodeDeploy:
    """The newest in-progress candidate (else the newest), saying so when there was a choice."""
    ordered = sorted(found, key=lambda c: (c.running, c.at is not None, c.at or datetime.min), reverse=True)
    chosen = ordered[0]
    if len(ordered) == 1:
        return FoundCodeDeploy(chosen.deployment_id, f"found in {where}")
    which = "the newest in progress" if chosen.running else "the newest (none in progress)"
    others = ", ".join(c.deployment_id for c in ordered[1:])
    return FoundCodeDeploy(chosen.deployment_id, f"{which} of {len(ordered)} found in {where}; not {others}")


@translates_store_errors
def find_codedeploy_deployment(engine: Engine, deployment_id: str | None, service: str | None) -> FoundCodeDeploy:
    """The CodeDeploy deployment id of the gated deployment: the deployment itself when it is a CodeDeploy one,
    else the CodeDeploy action of its pipeline run, else the in-progress CodeDeploy deployments of `service`."""
    if deployment_id and deployment_id.startswith(PREFIX) and len(deployment_id) > len(PREFIX):
        return FoundCodeDeploy(deployment_id[len(PREFIX) :], f"the gate's deployment {deployment_id}")
    searched: list[str] = []
    with engine.connect() as conn:
        if deployment_id:
            linked = conn.execute(
                select(deployments.c.pipeline_run_id).where(deployments.c.id == deployment_id)
            ).scalar_one_or_none()
            run = linked or deployment_id
            a, cd = action_runs, deployments.alias("cd")
            rows = conn.execute(
                select(a.c.external_id, a.c.status, a.c.started_at, cd.c.status.label("cd_status"), cd.c.started_at)
                .select_from(a.outerjoin(cd, cd.c.id == literal(PREFIX) + a.c.external_id))
                .where(a.c.pipeline_run_id == run, a.c.provider == "CodeDeploy", a.c.external_id.is_not(None))
            ).all()
            where = f"the CodeDeploy actions of pipeline run {run}"
            if rows:
                return _pick(
                    [
                        _Candidate(
                            r[0],
                            r[1] in ACTIVE_RUN or r[3] in ACTIVE_DEPLOYMENT,
                            r[4] or r[2],
                        )
                        for r in rows
                    ],
                    where,
                )
            searched.append(where)
        if service:
            d = deployments
            running = conn.execute(
                select(d.c.id, d.c.started_at, d.c.status_at).where(
                    d.c.source == "codedeploy", d.c.service == service, d.c.status.in_(ACTIVE_DEPLOYMENT)
                )
            ).all()
            where = f"the in-progress CodeDeploy deployments of service {service} (stored CodeDeploy events)"
            if running:
                return _pick([_Candidate(r[0][len(PREFIX) :], True, r[1] or r[2]) for r in running], where)
            searched.append(where)
    if not searched:
        return FoundCodeDeploy(None, "the gate was given no deployment or service to search the store by")
    return FoundCodeDeploy(None, "nothing found in " + " nor in ".join(searched))
