"""The webhook receiver: GitHub, GitLab, PagerDuty and generic/EventBridge events over HTTP.

Order of work for every request: size limit (413), authentication (401; nothing is archived for an
unauthenticated body), then archive and project through the one ingest path. A 2xx is sent only after
the raw payload is committed; a malformed body is archived as quarantined and answered 422 with the
reason; a store failure is 503 so the sender retries. Secrets are compared in constant time and never
logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from gatewatch import api
from gatewatch.api import Config, IngestSummary
from gatewatch.errors import GatewatchError, StoreError

log = logging.getLogger(__name__)
SECRET_VARIABLES = {
    "github_secret": "GATEWATCH_GITHUB_SECRET",
    "gitlab_token": "GATEWATCH_GITLAB_TOKEN",
    "pagerduty_secret": "GATEWATCH_PAGERDUTY_SECRET",
    "events_token": "GATEWATCH_EVENTS_TOKEN",
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds `limit` (never held whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            413, f"body of {declared} bytes is over the limit of {limit} bytes (webhooks.max_body_bytes)"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is over the limit of {limit} bytes (webhooks.max_body_bytes)")
    return bytes(body)


def _secret(config: Config, name: str) -> str:
    value = getattr(config.webhooks, name)
    if not value:
        raise HTTPException(
            503, f"this endpoint is not configured: set {SECRET_VARIABLES[name]} (or webhooks.{name} in gatewatch.yaml)"
        )
    return value


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_github(config: Config, headers, body: bytes) -> None:
    """X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>."""
    secret = _secret(config, "github_secret")
    given = headers.get("x-hub-signature-256", "")
    if not given.startswith("sha256=") or not hmac.compare_digest(given[7:].lower(), _hmac_hex(secret, body)):
        raise HTTPException(401, "missing or invalid X-Hub-Signature-256")


def verify_gitlab(config: Config, headers, body: bytes) -> None:
    """X-Gitlab-Token equals the configured token."""
    secret = _secret(config, "gitlab_token")
    if not hmac.compare_digest(headers.get("x-gitlab-token", "").encode(), secret.encode()):
        raise HTTPException(401, "missing or invalid X-Gitlab-Token")


def verify_pagerduty(config: Config, headers, body: bytes) -> None:
    """X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]; any one valid signature will do (key rotation)."""
    expected = _hmac_hex(_secret(config, "pagerduty_secret"), body)
    matched = False
    for part in headers.get("x-pagerduty-signature", "").split(","):
        part = part.strip()
        if part.startswith("v1="):
            matched |= hmac.compare_digest(part[3:].lower(), expected)  # check every one: constant time
    if not matched:
        raise HTTPException(401, "missing or invalid X-PagerDuty-Signature")


def verify_bearer(config: Config, headers, body: bytes) -> None:
    """Authorization: Bearer <events token>."""
    token = _secret(config, "events_token")
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


def _answer(summary: IngestSummary) -> JSONResponse:
    body = summary.to_dict()
    if summary.quarantined:
        body["detail"] = [f"{q.origin}: {q.error}" for q in summary.quarantined]
        return JSONResponse(body, status_code=422)
    return JSONResponse(body, status_code=200)


def build_router(engine: Engine, config: Config) -> APIRouter:
    """The collector's HTTP routes, bound to a store and configuration."""
    router = APIRouter()

    async def receive(
        request: Request, verify: Callable, source: str | None, event_header: str | None = None, single: bool = True
    ) -> JSONResponse:
        body = await read_body(request, config.webhooks.max_body_bytes)
        verify(config, request.headers, body)
        text = body.decode("utf-8", errors="surrogateescape")
        hint = request.headers.get(event_header) if event_header else None
        origin = f"{source} webhook" if single else "events"
        try:
            summary = await run_in_threadpool(api.ingest_text, engine, config, text, origin, source, hint, single)
        except StoreError as exc:
            log.error("store failure while ingesting a webhook: %s", exc)
            raise HTTPException(503, "the store is unavailable; retry later") from None
        except GatewatchError as exc:
            raise HTTPException(422, str(exc)) from None
        return _answer(summary)

    @router.post("/webhooks/github", summary="GitHub webhook (X-Hub-Signature-256)")
    async def github(request: Request) -> JSONResponse:
        return await receive(request, verify_github, "github", "x-github-event")

    @router.post("/webhooks/gitlab", summary="GitLab webhook (X-Gitlab-Token)")
    async def gitlab(request: Request) -> JSONResponse:
        return await receive(request, verify_gitlab, "gitlab", "x-gitlab-event")

    @router.post("/webhooks/pagerduty", summary="PagerDuty webhook v3 (X-PagerDuty-Signature)")
    async def pagerduty(request: Request) -> JSONResponse:
        return await receive(request, verify_pagerduty, "pagerduty")

    @router.post("/events", summary="EventBridge API destination or generic records (bearer token)")
    async def events(request: Request) -> JSONResponse:
        return await receive(request, verify_bearer, None, single=False)

    @router.get("/healthz", summary="Store connectivity")
    def healthz() -> JSONResponse:
        try:
            api.check_store(engine)
        except StoreError as exc:
            return JSONResponse({"status": "error", "store": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "store": "ok"})

    return router


def create_app(engine: Engine, config: Config, routers: Iterable[APIRouter] = ()) -> FastAPI:
    """The HTTP service: the collector's routes plus any further routers (e.g. the gate API)."""
    app = FastAPI(title="Gatewatch", summary="Webhook receiver and gate service")
    app.include_router(build_router(engine, config))
    for router in routers:
        app.include_router(router)
    return app


__all__ = ["build_router", "create_app", "read_body"]
