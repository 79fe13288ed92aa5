"""Records in the generic format (deployment, change, incident) for hand-worked datasets: test_dora's,
and the dashboard's refresh test. A deployment's team follows its service: api -> core, web -> front."""

from __future__ import annotations


def dep(id_, service, finished, status="success", commits=(), env="production", **extra):
    return {
        "type": "deployment",
        "id": id_,
        "service": service,
        "environment": env,
        "status": status,
        "finished_at": finished,
        "commits": list(commits),
        "team": {"api": "core", "web": "front"}[service],
        **extra,
    }


def change(id_, service, committed):
    return {"type": "change", "id": id_, "service": service, "committed_at": committed}


def incident(id_, service, opened, resolved="", **extra):
    return {"type": "incident", "id": id_, "service": service, "opened_at": opened, "resolved_at": resolved, **extra}
