"""The webhook receiver: GitHub, GitLab, PagerDuty and generic/EventBridge events over HTTP.

Order of work for every request: size limit (413), authentication (401; nothing is archived for an
unauthenticated body), then archive and project through the one ingest path. A 2xx is sent only after
the raw payload is committed; a malformed body is archived as quarantined and answered 422 with the
reason (bodies that are not UTF-8, nested too deep or not JSON objects included, see `payload_text`);
a store failure is 503 so the sender retries. Secrets are compared as bytes in constant time and never
logged. Every request gets an id for its log lines (`X-Request-ID`); what is received, stored and
refused is counted for `GET /metrics` (`gatewatch.metrics`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatewatch import api, metrics
from gatewatch.api import Config, IngestSummary
from gatewatch.errors import GatewatchError, StoreError
from gatewatch.logs import REQUEST_ID

log = logging.getLogger(__name__)
SECRET_VARIABLES = {
    "github_secret": "GATEWATCH_GITHUB_SECRET",
    "gitlab_token": "GATEWATCH_GITLAB_TOKEN",
    "pagerduty_secret": "GATEWATCH_PAGERDUTY_SECRET",
    "events_token": "GATEWATCH_EVENTS_TOKEN",
}
# A caller's X-Request-ID is kept when it is a plain token (it ends up in logs); otherwise a new one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def too_large(limit: int, declared: str = "") -> HTTPException:
    """The 413 for a body over `limit` bytes (with its declared Content-Length when known)."""
    size = f"body of {declared} bytes" if declared else "body"
    return HTTPException(413, f"{size} is over the limit of {limit} bytes (webhooks.max_body_bytes)")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds `limit` (never held whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit, declared)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413 when a route reads it (its declared
    Content-Length first, then the bytes as they arrive, chunked or not). A route that refuses a caller
    before reading, like the gate API without its token, never reads it."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > self.limit:
                raise too_large(self.limit, declared)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large(self.limit)
            return message

        await self.app(scope, limited, send)


class Refusal(BaseModel):
    """An answer that stores nothing: why, in one line."""

    detail: str


class IngestAnswer(BaseModel):
    """What was received: counts, and for a 422 the quarantined payloads with their reasons in `detail`."""

    stored: int
    duplicates: int
    ignored: int
    quarantined: int
    by_source: dict[str, int]
    quarantine: list[dict[str, Any]]
    warnings: list[str]
    detail: list[str] = Field(default_factory=list, description="One line per quarantined payload (422 only)")


INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IngestAnswer, "description": "Every payload stored (or a duplicate of a stored one)"},
    401: {"model": Refusal, "description": "Missing or invalid signature or token; nothing is archived"},
    413: {"model": Refusal, "description": "Body over webhooks.max_body_bytes; nothing is archived"},
    422: {
        "description": "Malformed body: archived as quarantined, with the reasons",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/IngestAnswer"},
                        {"$ref": "#/components/schemas/Refusal"},
                    ]
                }
            }
        },
    },
    503: {"model": Refusal, "description": "Secret not configured, or the store is down (retry)"},
}


class Health(BaseModel):
    status: Literal["ok", "error"]
    store: str


def _documented_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _secret(config: Config, name: str) -> str:
    value = getattr(config.webhooks, name)
    if not value:
        raise HTTPException(
            503, f"this endpoint is not configured: set {SECRET_VARIABLES[name]} (or webhooks.{name} in gatewatch.yaml)"
        )
    return value


def _hmac_hex(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")


def _header(headers, name: str) -> bytes:
    """A header's bytes as sent (compared as bytes: a non-ASCII value is simply not equal)."""
    return headers.get(name, "").encode("latin-1")


def verify_github(config: Config, headers, body: bytes) -> None:
    """X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>."""
    secret = _secret(config, "github_secret")
    given = _header(headers, "x-hub-signature-256")
    if not given.startswith(b"sha256=") or not hmac.compare_digest(given[7:].lower(), _hmac_hex(secret, body)):
        raise HTTPException(401, "missing or invalid X-Hub-Signature-256")


def verify_gitlab(config: Config, headers, body: bytes) -> None:
    """X-Gitlab-Token equals the configured token."""
    secret = _secret(config, "gitlab_token")
    if not hmac.compare_digest(_header(headers, "x-gitlab-token"), secret.encode()):
        raise HTTPException(401, "missing or invalid X-Gitlab-Token")


def verify_pagerduty(config: Config, headers, body: bytes) -> None:
    """X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]; any one valid signature will do (key rotation)."""
    expected = _hmac_hex(_secret(config, "pagerduty_secret"), body)
    matched = False
    for part in _header(headers, "x-pagerduty-signature").split(b","):
        part = part.strip()
        if part.startswith(b"v1="):
            matched |= hmac.compare_digest(part[3:].lower(), expected)  # check every one: constant time
    if not matched:
        raise HTTPException(401, "missing or invalid X-PagerDuty-Signature")


def _bearer_matches(headers, token: str) -> bool:
    scheme, _, value = _header(headers, "authorization").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), token.encode())


def verify_bearer(config: Config, headers, body: bytes) -> None:
    """Authorization: Bearer <events token>."""
    if not _bearer_matches(headers, _secret(config, "events_token")):
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


def _count(summary: IngestSummary) -> None:
    metrics.count_payloads("stored", summary.by_source)
    metrics.count_payloads("duplicate", summary.duplicates_by_source)
    metrics.count_payloads("quarantined", Counter(q.source for q in summary.quarantined))


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
        endpoint, started, code = source or "events", time.perf_counter(), 500
        try:
            answer = await ingest(request, verify, source, event_header, single)
            code = answer.status_code
            metrics.observe_ingest_seconds(endpoint, time.perf_counter() - started)
            return answer
        except HTTPException as exc:
            code = exc.status_code
            raise
        finally:
            metrics.count_webhook(endpoint, code)

    async def ingest(
        request: Request, verify: Callable, source: str | None, event_header: str | None, single: bool
    ) -> JSONResponse:
        body = await read_body(request, config.webhooks.max_body_bytes)
        verify(config, request.headers, body)
        text = body.decode("utf-8", errors="surrogateescape")
        hint = request.headers.get(event_header) if event_header else None
        origin = f"{source} webhook" if single else "events"
        try:
            summary = await run_in_threadpool(api.ingest_text, engine, config, text, origin, source, hint, single)
        except StoreError as exc:
            metrics.count_store_error("ingest")
            log.error("store failure while ingesting a webhook: %s", exc)
            raise HTTPException(503, "the store is unavailable; retry later") from None
        except GatewatchError as exc:
            raise HTTPException(422, str(exc)) from None
        _count(summary)
        return _answer(summary)

    @router.post(
        "/webhooks/github",
        response_model=None,
        responses=INGEST_RESPONSES,
        openapi_extra=_documented_body({"type": "object"}),
        summary="GitHub webhook (X-Hub-Signature-256)",
    )
    async def github(request: Request) -> JSONResponse:
        return await receive(request, verify_github, "github", "x-github-event")

    @router.post(
        "/webhooks/gitlab",
        response_model=None,
        responses=INGEST_RESPONSES,
        openapi_extra=_documented_body({"type": "object"}),
        summary="GitLab webhook (X-Gitlab-Token)",
    )
    async def gitlab(request: Request) -> JSONResponse:
        return await receive(request, verify_gitlab, "gitlab", "x-gitlab-event")

    @router.post(
        "/webhooks/pagerduty",
        response_model=None,
        responses=INGEST_RESPONSES,
        openapi_extra=_documented_body({"type": "object"}),
        summary="PagerDuty webhook v3 (X-PagerDuty-Signature)",
    )
    async def pagerduty(request: Request) -> JSONResponse:
        return await receive(request, verify_pagerduty, "pagerduty")

    @router.post(
        "/events",
        response_model=None,
        responses=INGEST_RESPONSES,
        openapi_extra=_documented_body({}),
        summary="EventBridge API destination or generic records (bearer token)",
    )
    async def events(request: Request) -> JSONResponse:
        return await receive(request, verify_bearer, None, single=False)

    @router.get(
        "/healthz",
        response_model=None,
        responses={200: {"model": Health}, 503: {"model": Health, "description": "The store is unreachable"}},
        summary="Store connectivity",
    )
    def healthz() -> JSONResponse:
        try:
            api.check_store(engine)
        except StoreError as exc:  # unauthenticated: the store's address and the driver's error go to the log
            metrics.count_store_error("health")
            log.error("health check: %s", exc)
            return JSONResponse({"status": "error", "store": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "store": "ok"})

    scraped = metrics.scrape_registry(metrics.NewestEventAge(lambda: api.newest_event_times(engine), api.utcnow))

    @router.get(
        "/metrics",
        summary="The server's own metrics (Prometheus text format)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: {"description": "metrics.token is set"}},
    )
    def prometheus_metrics(request: Request) -> Response:
        token = config.metrics.token
        # without a token /metrics is open: serve it on a network only Prometheus reaches
        if token and not _bearer_matches(request.headers, token):
            raise HTTPException(401, "missing or invalid metrics token", headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestIds:
    """ASGI middleware: each HTTP request gets an id (the caller's X-Request-ID when it is a plain token,
    else a new one), set for its log lines and sent back in the answer's X-Request-ID."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 (OPTIONS included: no CORS is served) with `Allow` naming every method the OpenAPI document
    declares at the path, over all the routes that share it (the router names only the first)."""
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    allowed = {
        method.upper()
        for template, operations in request.app.openapi()["paths"].items()
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path)
        for method in operations
    }
    if not allowed and isinstance(exc, StarletteHTTPException) and exc.headers:
        allowed = set(exc.headers.get("Allow", "").split(", "))  # a route outside the document (/docs)
    return JSONResponse({"detail": "Method Not Allowed"}, 405, headers={"Allow": ", ".join(sorted(allowed))})


def create_app(engine: Engine, config: Config, routers: Iterable[APIRouter] = ()) -> FastAPI:
    """The HTTP service: the collector's routes plus any further routers (e.g. the gate API), every
    request body limited to webhooks.max_body_bytes."""
    app = FastAPI(title="Gatewatch", summary="Webhook receiver and gate service")
    app.add_exception_handler(405, method_not_allowed)
    app.add_middleware(BodyLimit, limit=config.webhooks.max_body_bytes)
    app.add_middleware(RequestIds)
    app.include_router(build_router(engine, config))
    for router in routers:
        app.include_router(router)
    return app


__all__ = ["BodyLimit", "RequestIds", "build_router", "create_app", "read_body", "too_large"]
