"""Senders Gatewatch has no adapter for, recognised by the shape their documentation gives, so a
quarantined payload can say what it is ("looks like a CircleCI webhook") instead of only what it is not."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _has(payload: Mapping, *keys: str) -> bool:
    return all(isinstance(payload.get(key), Mapping) for key in keys)


def _circleci(p: Mapping) -> bool:  # webhook: type workflow-completed / job-completed, happened_at, webhook{id,name}
    return "happened_at" in p and _has(p, "webhook") and isinstance(p.get("type"), str)


def _jenkins(p: Mapping) -> bool:  # Notification plugin: name, url, build{full_url, number, phase, status}
    build = p.get("build")
    return isinstance(build, Mapping) and "phase" in build and ("full_url" in build or "number" in build)


def _buildkite(p: Mapping) -> bool:  # event build.finished / job.started / agent.* / ping, with build, pipeline, sender
    event = p.get("event")
    return (
        isinstance(event, str)
        and event.split(".", 1)[0] in ("build", "job", "agent", "ping")
        and (_has(p, "build") or _has(p, "job") or _has(p, "agent") or _has(p, "pipeline"))
    )


def _opsgenie(p: Mapping) -> bool:  # webhook integration: action, alert{alertId...}, integrationName / source
    return _has(p, "alert") and "action" in p and ("integrationName" in p or "integrationId" in p or _has(p, "source"))


def _argocd(p: Mapping) -> bool:  # notifications: the Application (app.metadata/spec/status) or sync/health fields
    app = p.get("app") or p.get("application")
    if isinstance(app, Mapping) and "metadata" in app and ("status" in app or "spec" in app):
        return True
    return "syncStatus" in p and "healthStatus" in p


def _azure_devops(p: Mapping) -> bool:  # service hooks: eventType build.complete / git.push, publisherId, resource
    return "publisherId" in p and "eventType" in p and _has(p, "resource")


KNOWN: tuple[tuple[str, Callable[[Mapping], bool]], ...] = (
    ("a CircleCI webhook", _circleci),
    ("a Jenkins Notification plugin event", _jenkins),
    ("a Buildkite webhook", _buildkite),
    ("an Opsgenie webhook", _opsgenie),
    ("an Argo CD notification", _argocd),
    ("an Azure DevOps service hook", _azure_devops),
)


def identify(payload: Any) -> str | None:
    """What a payload no adapter reads looks like ("a CircleCI webhook"), or None."""
    if not isinstance(payload, Mapping):
        return None
    for name, looks_like in KNOWN:
        if looks_like(payload):
            return name
    return None
