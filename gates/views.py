"""The gate service over HTTP: evaluate a gate, read a stored decision, and the adapters for Flagger
webhooks and Argo Rollouts `web` metrics. Thin routes: validation and status codes here, decisions
through the service API (`gatewatch.api.evaluate_gate`).

Every route needs the gate token (GATEWATCH_GATE_TOKEN), compared in constant time: as
`Authorization: Bearer ...`, or for Flagger (which cannot send headers) as `metadata.token` in its
payload. A header token is checked before the body is read, and every body is limited to
`webhooks.max_body_bytes` (413, by `collector.webhooks.create_app`). Handlers are plain functions, so
FastAPI runs them (and the store and telemetry I/O of an evaluation) in its threadpool.
"""

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from gatewatch import api, metrics
from gatewatch.api import Config, Policy, StoredDecision
from gatewatch.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

KEY_LENGTH = 255  # gate_decisions.key
# No control characters: a NUL cannot be stored in PostgreSQL text, and ids end up in logs.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Id = Annotated[str, Field(min_length=1, max_length=KEY_LENGTH, pattern=_PRINTABLE)]
Scope = Annotated[
    str,
    Field(
        min_length=1, max_length=2000, pattern=_PRINTABLE, description='Prometheus label matchers, e.g. version="v2"'
    ),
]
NOT_CONFIGURED = (
    "gate policies are not configured: set GATEWATCH_GATE_POLICIES (or gates.policies in "
    "gatewatch.yaml) to the folder of gate policy files, or start `gatewatch serve --policies DIR`"
)


class Problem(BaseModel):
    """An error answer: a message, or FastAPI's list of validation errors (each naming its field in `loc`)."""

    detail: str | list[dict[str, Any]]


class EvaluateRequest(BaseModel):
    """What a pipeline sends to ask a gate: the deployment, the idempotency key, canary scopes, parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["key"], "properties": {"key": {"type": "string"}}},
                {"required": ["deployment_id"], "properties": {"deployment_id": {"type": "string"}}},
            ]
        },
    )

    deployment_id: Id | None = Field(None, description="The deployment being gated")
    service: Id | None = Field(None, description="The service (for DORA guards)")
    key: Id | None = Field(
        None, description="Idempotency key; default `{gate}:{deployment_id}`. One of key and deployment_id is required"
    )
    baseline: Scope | None = None
    canary: Scope | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="Caller parameters for the policy's actions")


class ArgoQuery(BaseModel):
    """The GET form of an Argo Rollouts measurement: the same fields as a body, without params."""

    model_config = ConfigDict(extra="forbid")

    deployment_id: Id | None = None
    service: Id | None = None
    key: Id | None = None
    baseline: Scope | None = None
    canary: Scope | None = None


class CheckOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    status: Literal["pass", "fail", "nodata", "continue"]
    effect: Literal["none", "hold", "rollback"]
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class DecisionOut(BaseModel):
    """A stored decision, as `gatewatch gate check --json` prints it."""

    model_config = ConfigDict(extra="allow")

    id: str
    key: str
    attempt: int
    gate: str
    decision: Literal["promote", "hold", "rollback"]
    created_at: datetime
    deployment_id: str | None
    service: str | None
    checks: list[CheckOut]
    reasons: list[str]
    actions: list[dict[str, Any]]
    evidence: dict[str, Any]
    replayed: bool = Field(description="true when this decision was stored by an earlier call")


class GateCheckOut(BaseModel):
    name: str
    type: str
    on_fail: str
    on_missing_data: str


class GateOut(BaseModel):
    name: str
    on_missing_data: str
    checks: list[GateCheckOut]
    actions: list[str]


class GatesOut(BaseModel):
    gates: list[GateOut]


class ArgoVerdict(BaseModel):
    """What an AnalysisTemplate's successCondition/failureCondition read (always HTTP 200)."""

    decision: Literal["promote", "hold", "rollback"]
    score: float | None = Field(description="The canary score (0-100) when the gate ran a canary check")
    promote: bool
    rollback: bool
    id: str
    key: str
    reasons: list[str]


class FlaggerHook(StrEnum):
    confirm_rollout = "confirm-rollout"
    pre_rollout = "pre-rollout"
    rollout = "rollout"
    confirm_traffic_increase = "confirm-traffic-increase"
    confirm_promotion = "confirm-promotion"
    rollback = "rollback"


class FlaggerPayload(BaseModel):
    """Flagger's webhook payload; fields Flagger may add later are ignored."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=_PRINTABLE)]
    namespace: Annotated[str, Field(min_length=1, max_length=253, pattern=_PRINTABLE)]
    phase: str | None = None
    checksum: Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            pattern=_PRINTABLE,
            description="The canary revision's hash (Flagger 1.x): one decision per revision",
        ),
    ]
    metadata: dict[str, str] = Field(
        default_factory=dict, description="token, service, deployment_id, baseline, canary; the rest are params"
    )


class FlaggerAnswer(BaseModel):
    """The body of every Flagger answer; Flagger shows it in its events when the status is not 2xx."""

    hook: FlaggerHook
    decision: Literal["promote", "hold", "rollback"]
    detail: str
    id: str
    key: str
    reasons: list[str]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or wrong gate token"},
    404: {"model": Problem, "description": "Unknown gate (the message names the known ones)"},
    422: {"model": Problem, "description": "Invalid request (names the field) or invalid policy"},
    503: {"model": Problem, "description": "Gate token or policies not configured, or the store is down"},
}
BODY_ERRORS = ERRORS | {
    400: {"model": Problem, "description": "The body cannot be read (not UTF-8 JSON)"},
    413: {"model": Problem, "description": "Body over webhooks.max_body_bytes"},
}
FLAGGER_GATING = {
    "rollback": (403, "the gate decided rollback: this revision must not proceed"),
    "hold": (409, "the gate holds: not enough evidence yet, Flagger will ask again"),
    "promote": (200, "the gate decided promote: proceed"),
}
FLAGGER_ROLLBACK = {
    "rollback": (200, "the gate decided rollback: Flagger rolls the canary back"),
    "hold": (409, "the gate holds: no rollback"),
    "promote": (409, "the gate decided promote: no rollback"),
}


def _token_matches(config: Config, given: str | None) -> None:
    token = config.gates.token
    if not token:
        raise HTTPException(
            503, "the gate API is not configured: set GATEWATCH_GATE_TOKEN (or gates.token in gatewatch.yaml)"
        )
    if given is None or not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        raise HTTPException(401, "missing or invalid gate token", headers={"WWW-Authenticate": "Bearer"})


def _header_token(request: Request) -> str | None:
    scheme, value = get_authorization_scheme_param(request.headers.get("authorization"))
    return value if scheme.lower() == "bearer" and value else None


def _token_first(config: Config, token_in_body: frozenset[str]) -> type[APIRoute]:
    """A route class that checks the gate token from `Authorization` before FastAPI reads the body
    (it reads a declared body before running any dependency): an unauthenticated caller is refused
    with 401 and its body is never read. Routes named in `token_in_body` (Flagger's, whose token may
    be in the payload) check a header token first when one is sent, else read the body (bounded)."""

    class TokenFirst(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            body_may_hold_token = self.name in token_in_body

            async def checked(request: Request) -> Response:
                given = _header_token(request)
                if given is not None or not body_may_hold_token:
                    _token_matches(config, given)
                return await handler(request)

            return checked

    return TokenFirst


def _invalid(where: tuple[str, ...], message: str, value: Any = None) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": where, "msg": message, "input": value}])


def build_router(engine: Engine, config: Config, policies: dict[str, Policy] | None) -> APIRouter:
    """The gate routes, bound to a store, the configuration (for the token) and the loaded policies
    (None when not configured: every gate route then answers 503 naming the setting)."""
    router = APIRouter(prefix="/v1", tags=["gates"], route_class=_token_first(config, frozenset({"flagger"})))
    bearer = HTTPBearer(auto_error=False, description="GATEWATCH_GATE_TOKEN")

    def policies_or_503() -> dict[str, Policy]:
        if policies is None:
            raise HTTPException(503, NOT_CONFIGURED)
        return policies

    def find_gate(name: str) -> Policy:
        found = policies_or_503().get(name)
        if found is None:
            known = ", ".join(sorted(policies_or_503())) or "none"
            raise HTTPException(404, f"unknown gate {name!r}; known gates: {known}")
        return found

    # Dependencies without I/O are coroutines so they run on the event loop, not in the threadpool.
    async def gate(name: str) -> Policy:
        return find_gate(name)

    def decide(policy: Policy, req: EvaluateRequest | ArgoQuery, where: str) -> StoredDecision:
        request = api.GateRequest(
            req.deployment_id, req.service, req.key, req.baseline, req.canary, dict(getattr(req, "params", {}))
        )
        key = request.key_for(policy.name)
        if key is None:
            raise _invalid((where, "key"), "key or deployment_id is required, so that a retry is recognised")
        if len(key) > KEY_LENGTH:
            raise _invalid(
                (where, "key"),
                f"the key '{{gate}}:{{deployment_id}}' is over {KEY_LENGTH} characters; give a shorter key",
            )
        fields = {"gate": policy.name, "key": key, "deployment_id": req.deployment_id, "service": req.service}
        started = time.perf_counter()
        try:
            stored = api.evaluate_gate(engine, config, policy, request)
        except ConfigError as exc:
            metrics.count_gate_error(policy.name, "config")
            metrics.observe_gate_seconds(policy.name, time.perf_counter() - started)
            log.warning("gate %s cannot evaluate key %s: %s", policy.name, key, exc, extra=fields)
            raise HTTPException(422, str(exc)) from None
        except StoreError as exc:
            metrics.count_gate_error(policy.name, "store")
            metrics.count_store_error("gate")
            metrics.observe_gate_seconds(policy.name, time.perf_counter() - started)
            log.error("store failure while evaluating gate %s: %s", policy.name, exc, extra=fields)
            raise HTTPException(503, "the store is unavailable; retry later") from None
        metrics.count_gate_evaluation(policy.name, stored.decision, time.perf_counter() - started)
        log.info(
            "gate %s decided %s for key %s%s",
            policy.name,
            stored.decision,
            key,
            "" if stored.first else " (replayed)",
            extra=fields | {"decision": stored.decision},
        )
        return stored

    authenticated = [Depends(bearer)]  # declares the scheme; TokenFirst checks it

    @router.get(
        "/gates",
        response_model=GatesOut,
        dependencies=authenticated,
        responses={k: v for k, v in ERRORS.items() if k != 404},
        summary="The gates and their checks",
    )
    def list_gates() -> dict:
        return {"gates": api.describe_gates(policies_or_503())}

    @router.post(
        "/gates/{name}/evaluate",
        response_model=DecisionOut,
        dependencies=authenticated,
        responses=BODY_ERRORS,
        summary="Evaluate a gate: promote, hold or rollback (200 for every decision)",
    )
    def evaluate_gate(policy: Annotated[Policy, Depends(gate)], body: EvaluateRequest) -> dict:
        return decide(policy, body, "body").to_dict()

    @router.get(
        "/decisions/{decision_id}",
        response_model=DecisionOut,
        dependencies=authenticated,
        responses=ERRORS | {404: {"model": Problem, "description": "No such decision"}},
        summary="A stored decision",
    )
    def read_decision(decision_id: uuid.UUID) -> dict:
        try:
            stored = api.get_gate_decision(engine, str(decision_id))
        except StoreError:
            metrics.count_store_error("decision")
            raise HTTPException(503, "the store is unavailable; retry later") from None
        if stored is None:
            raise HTTPException(404, f"no decision {str(decision_id)!r}")
        return stored.to_dict()

    def argo(policy: Policy, req: EvaluateRequest | ArgoQuery, where: str) -> dict:
        stored = decide(policy, req, where)
        score = stored.evidence.get("canary_score")
        return {
            "decision": stored.decision,
            "score": score,
            "promote": stored.decision == "promote",
            "rollback": stored.decision == "rollback",
            "id": stored.id,
            "key": stored.key,
            "reasons": stored.reasons,
        }

    @router.get(
        "/argo/{name}",
        response_model=ArgoVerdict,
        dependencies=authenticated,
        responses=ERRORS,
        summary="Argo Rollouts web metric (query parameters)",
    )
    def argo_get(policy: Annotated[Policy, Depends(gate)], query: Annotated[ArgoQuery, Query()]) -> dict:
        return argo(policy, query, "query")

    @router.post(
        "/argo/{name}",
        response_model=ArgoVerdict,
        dependencies=authenticated,
        responses=BODY_ERRORS,
        summary="Argo Rollouts web metric (JSON body)",
    )
    def argo_post(policy: Annotated[Policy, Depends(gate)], body: EvaluateRequest) -> dict:
        return argo(policy, body, "body")

    flagger_responses = BODY_ERRORS | {
        403: {"model": FlaggerAnswer, "description": "Gating hook: the gate decided rollback"},
        409: {"model": FlaggerAnswer, "description": "Gating hook: hold; rollback hook: promote or hold"},
    }

    @router.post(
        "/flagger/{name}/{hook}",
        response_model=FlaggerAnswer,
        responses=flagger_responses,
        summary="Flagger webhook: 200 only when Flagger should go on (or, for `rollback`, roll back)",
    )
    def flagger(
        name: str,
        hook: FlaggerHook,
        payload: FlaggerPayload,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ):
        metadata = dict(payload.metadata)
        token = metadata.pop("token", None)
        _token_matches(config, credentials.credentials if credentials else token)
        policy = find_gate(name)
        fields = {k: metadata.pop(k) for k in ("deployment_id", "service", "baseline", "canary") if k in metadata}
        fields.setdefault("service", payload.name)
        key = f"flagger:{payload.namespace}/{payload.name}:{payload.checksum}"
        if len(key) > KEY_LENGTH:
            key = "flagger:sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
        try:
            req = EvaluateRequest(key=key, params=metadata, **fields)
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    e | {"loc": ("body", "metadata", *e["loc"])}
                    for e in exc.errors(include_url=False, include_context=False)
                ]
            ) from None
        stored = decide(policy, req, "body")
        status, detail = (FLAGGER_ROLLBACK if hook is FlaggerHook.rollback else FLAGGER_GATING)[stored.decision]
        return JSONResponse(
            {
                "hook": hook.value,
                "decision": stored.decision,
                "detail": detail,
                "id": stored.id,
                "key": stored.key,
                "reasons": stored.reasons,
            },
            status_code=status,
        )

    return router


__all__ = ["EvaluateRequest", "build_router"]
