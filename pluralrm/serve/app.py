"""The FastAPI application of the reward server (routes, error answers, micro-batching).

Routes:

- ``POST /score`` — ``{prompts, responses, groups | all_groups, aggregate?, weights?,
  normalize?, q?, temperature?, risk?}`` → ``{scores: [N]}`` (one group or one per row), or with
  ``all_groups`` ``{groups: [G labels], scores: [N][G], aggregate?: [N]}``; equal to
  ``RewardModel.score`` / ``score_all_groups`` and ``pluralrm.score.aggregate(..., sets=prompts)``.
- ``POST /compare`` — ``{prompt, a, b, groups?}`` → ``{groups: [K], p_a_over_b: [K]}``, equal
  to ``RewardModel.predict_preference`` (every group of the model when ``groups`` is omitted).
- ``GET /groups`` — the schema: attributes, vocabularies, groups with training counts and
  population shares.
- ``POST /get_reward`` — OpenRLHF's remote reward protocol (:mod:`pluralrm.serve.openrlhf`).
- ``GET /health`` — ``{status: "ok", ...}`` and batching counters.
- ``GET /healthz`` (liveness: the process answers) and ``GET /readyz`` (readiness: the model
  is loaded and warmed up, and the server is not shutting down; 503 otherwise) — open without
  the API key; ``GET /metrics`` — Prometheus text format (:mod:`pluralrm.serve.metrics`).

With ``ServeConfig.api_key`` every other route needs the key (:mod:`pluralrm.serve.auth`).
Each request is logged without its texts (:mod:`pluralrm.serve.observe`). A JSON body is read
with or without ``Content-Type: application/json``; another content type is a 422 saying to
send JSON. The full reference with curl examples: ``docs/http_api.md``.

Errors: a malformed field is a 422 whose ``error`` names the field; an unknown group attribute
or (with the ``error`` policy) an unseen group value too; a body over the byte limit or a list
over the item limit is a 413. A group value the model never saw is answered under the server's
``fallback`` policy and reported in the answer's ``warnings``.
"""
# no `from __future__ import annotations`: FastAPI reads the (locally built) body models from the annotations

import dataclasses
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException

from pluralrm import __version__
from pluralrm.errors import ConfigError, DataError
from pluralrm.integrations.rewards import ALL, resolve_rows
from pluralrm.models.reward_model import FALLBACKS
from pluralrm.score.rules import aggregate
from pluralrm.score.table import is_single_spec, population_weights, spec_label
from pluralrm.serve.auth import ApiKeyAuth
from pluralrm.serve.batcher import ClosedError, MicroBatcher
from pluralrm.serve.metrics import Metrics
from pluralrm.serve.observe import Observe
from pluralrm.serve.openrlhf import RlhfConfig, add_openrlhf_route
from pluralrm.serve.requests import FieldError, Limits, check_items, request_models


@dataclass(frozen=True)
class ServeConfig:
    """Server settings.

    Attributes:
      limits: request size limits (body bytes, items, characters per text).
      max_batch: rows collected before a batch runs without waiting further.
      max_wait_ms: how long a request waits for others to share its model call.
      fallback: unseen group values: ``pooled`` (warning in the answer), ``error`` (422), ``nearest``.
      warmup: compile the model's functions at startup (first requests are not slow).
      drain_timeout_s: on SIGTERM, how long in-flight requests may take to finish.
      api_key: when set, every route but /healthz and /readyz needs it (401 otherwise).
      log_bodies: log request bodies (texts) too; off by default, for debugging only.
      rlhf: the OpenRLHF route's default reward and label handling (its unseen-group policy
        is ``fallback``).
    """

    limits: Limits = field(default_factory=Limits)
    max_batch: int = 256
    max_wait_ms: float = 5.0
    fallback: str = "pooled"
    warmup: bool = True
    drain_timeout_s: float = 30.0
    api_key: str | None = field(default=None, repr=False)
    log_bodies: bool = False
    rlhf: RlhfConfig = field(default_factory=RlhfConfig)

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConfigError(f"fallback must be one of {list(FALLBACKS)}, got {self.fallback!r}")
        if self.max_batch < 1 or self.max_wait_ms < 0:
            raise ConfigError("max_batch must be >= 1 and max_wait_ms >= 0")


def model_runners(model: Any) -> dict[str, Any]:
    """The batcher's model calls (run in its worker thread); group specs arrive resolved."""
    return {
        "score": lambda c: model.score(c["prompts"], c["responses"], groups=c["groups"], fallback="error"),
        "all_groups": lambda c: model.score_all_groups(c["prompts"], c["responses"])[0],
        "compare": lambda c: model.predict_preference(c["prompts"], c["a"], c["b"], groups=c["groups"],
                                                      fallback="error"),
        "compare_all": lambda c: model.predict_preference(c["prompts"], c["a"], c["b"], groups="all"),
        "score_risk": lambda c: _by_risk(c, lambda d, a: model.score(d["prompts"], d["responses"], groups=d["groups"],
                                                                      fallback="error", risk=a)),
        "all_groups_risk": lambda c: _by_risk(c, lambda d, a: model.score_all_groups(d["prompts"], d["responses"],
                                                                                      risk=a)[0]),
    }


def _by_risk(columns: dict[str, list[Any]], run: Any) -> np.ndarray:
    """Runs ``run(columns, α)`` once per distinct ``risk`` of the batched rows (jobs with
    different α share a batch), putting the rows back in order."""
    risk = np.asarray(columns["risk"], np.float64)
    out = None
    for alpha in np.unique(risk):
        idx = np.flatnonzero(risk == alpha)
        part = np.asarray(run({k: [v[i] for i in idx] for k, v in columns.items() if k != "risk"}, float(alpha)))
        if out is None:
            out = np.empty((len(risk),) + part.shape[1:], part.dtype)
        out[idx] = part
    return out


def create_app(model: Any, config: ServeConfig = ServeConfig(), name: str = "") -> FastAPI:
    """The reward server for ``model`` (see the module docstring)."""
    ScoreRequest, CompareRequest = request_models(config.limits)
    resolver = _GroupResolver(model, config.fallback)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = MicroBatcher(model_runners(model), config.max_batch, config.max_wait_ms / 1000,
                               observe=metrics.observe_batch)
        batcher.start()
        app.state.batcher = batcher
        if config.warmup:
            await _warmup(batcher, model)
            metrics.batch_rows = type(metrics.batch_rows)(metrics.batch_rows.buckets)  # warm-up is not traffic
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await batcher.close()

    # strict_content_type=False: a JSON body without a Content-Type header is read as JSON
    app = FastAPI(title="pluralrm reward server", version=__version__, lifespan=lifespan, strict_content_type=False)
    app.state.ready = False
    # Starlette runs the last added middleware first: observe (log, metrics) > API key > body limit.
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)  # 413s in our JSON error format
    if config.api_key is not None:
        app.add_middleware(ApiKeyAuth, key=config.api_key)
    app.add_middleware(Observe, metrics=metrics, log_bodies=config.log_bodies)
    _install_error_handlers(app)
    add_openrlhf_route(app, model, config.limits, dataclasses.replace(
        config.rlhf, reward=dataclasses.replace(config.rlhf.reward, fallback=config.fallback)))

    @app.post("/score")
    async def score(body: ScoreRequest, request: Request) -> dict[str, Any]:
        _check_items(body, config.limits)
        batcher: MicroBatcher = request.app.state.batcher
        columns = {"prompts": body.prompts, "responses": body.responses}
        suffix = ""
        if body.risk is not None:
            model.check_risk(body.risk)  # a model without a distribution: 422 naming the heads that have one
            columns, suffix = {**columns, "risk": [body.risk] * len(body.prompts)}, "_risk"
        if not body.all_groups:
            groups, notes = resolver.rows(body.groups, len(body.prompts))
            scores = await batcher.submit("score" + suffix, {**columns, "groups": groups})
            return {"scores": scores.tolist(), "warnings": notes}
        table = await batcher.submit("all_groups" + suffix, columns)
        out: dict[str, Any] = {"groups": model.group_labels, "scores": table.tolist(), "warnings": []}
        if body.aggregate is not None:
            weights = body.weights
            if weights == "population" or (weights is None and body.aggregate == "weighted"):
                weights = population_weights(model.schema)
            params = {k: v for k, v in (("q", body.q), ("temperature", body.temperature)) if v is not None}
            try:
                agg = await batcher.run_in_worker(
                    lambda: aggregate(table, body.aggregate, weights, sets=body.prompts, normalize=body.normalize,
                                      **params)
                )
            except ConfigError as e:  # the rule's parameters were checked by the body model: the weights remain
                raise HTTPException(status_code=422, detail=f"body.weights: {e}") from None
            out["aggregate"] = agg.tolist()
        return out

    @app.post("/compare")
    async def compare(body: CompareRequest, request: Request) -> dict[str, Any]:
        _check_items(body, config.limits)
        batcher: MicroBatcher = request.app.state.batcher
        if body.groups is None:
            p = await batcher.submit("compare_all", {"prompts": [body.prompt], "a": [body.a], "b": [body.b]})
            return {"groups": model.group_labels, "p_a_over_b": p[0].tolist(), "warnings": []}
        specs = [body.groups] if is_single_spec(body.groups) else list(body.groups)
        groups, notes = resolver.rows(specs, len(specs))
        k = len(specs)
        p = await batcher.submit("compare", {"prompts": [body.prompt] * k, "a": [body.a] * k, "b": [body.b] * k,
                                             "groups": groups})
        return {"groups": [spec_label(s) for s in specs], "p_a_over_b": p.tolist(), "warnings": notes}

    @app.get("/groups")
    async def groups() -> dict[str, Any]:
        schema = model.schema
        shares = population_weights(schema)
        return {
            "attributes": list(schema.attributes),
            "vocabularies": {a: list(v) for a, v in zip(schema.attributes, schema.vocabularies)},
            "groups": [
                {"label": label, "values": dict(zip(schema.attributes, g)), "count": int(c), "share": float(s)}
                for label, g, c, s in zip(model.group_labels, schema.groups, schema.group_counts, shares)
            ],
        }

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        stats = request.app.state.batcher.stats
        return {"status": "ok", "model": name, "version": __version__, "groups": model.schema.num_groups,
                "jobs": stats.jobs, "batches": stats.batches, "model_calls": stats.model_calls,
                "largest_call": stats.largest_call, "in_flight": stats.in_flight,
                "calls_by_jobs": {str(k): v for k, v in sorted(stats.calls_by_size.items())}}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        batcher = getattr(request.app.state, "batcher", None)
        ready = bool(request.app.state.ready) and batcher is not None and not batcher.closing
        return JSONResponse(status_code=200 if ready else 503,
                            content={"status": "ready" if ready else "not ready"})

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


class _GroupResolver:
    """Group specs → specs with the unseen-value policy already applied (so the batched model
    call cannot warn or fail), plus the policy's warnings for the answer."""

    def __init__(self, model: Any, fallback: str):
        self.model, self.fallback = model, fallback

    def rows(self, groups: Any, n: int) -> tuple[list[dict[str, str]], list[str]]:
        specs = [groups] * n if groups is None or is_single_spec(groups) else list(groups)
        if ALL in specs:
            raise HTTPException(status_code=422, detail="body.groups: 'all' names no group here; "
                                                        "send all_groups: true (with an aggregate rule) instead")
        try:
            return resolve_rows(self.model, [{} if s is None else s for s in specs], self.fallback)
        except DataError as e:
            raise HTTPException(status_code=422, detail=f"body.groups: {e.reason}") from None


async def _warmup(batcher: MicroBatcher, model: Any) -> None:
    one = {"prompts": ["warm up"], "responses": ["warm up"]}
    await batcher.submit("score", {**one, "groups": [{}]})
    await batcher.submit("all_groups", one)
    pair = {"prompts": ["warm up"], "a": ["a"], "b": ["b"]}
    await batcher.submit("compare", {**pair, "groups": [{}]})
    await batcher.submit("compare_all", pair)
    stats = batcher.stats  # warm-up calls are not traffic
    stats.jobs = stats.batches = stats.model_calls = stats.largest_call = 0
    stats.calls_by_size.clear()


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is answered 413 ``{"error": "body: ..."}``,
    before it is read when its Content-Length says so, otherwise as soon as the bytes received
    pass the limit (the body is buffered here, at most ``max_bytes``, then handed on)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, size: str, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse(status_code=413, headers={"Connection": "close"},
                                content={"error": f"body: {size}, more than this server's limit of {self.max_bytes} bytes"})
        await response(scope, receive, send)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(f"{int(declared)} bytes", scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server stops reading at Content-Length
            return
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                await self._refuse(f"more than {self.max_bytes} bytes sent", scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> dict:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


def _check_items(body: Any, limits: Limits) -> None:
    message = check_items(body, limits)
    if message is not None:
        raise HTTPException(status_code=413, detail=message)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        content_type = request.headers.get("content-type")
        for e in exc.errors():
            loc, msg = [str(x) for x in e.get("loc", ())], str(e.get("msg", "invalid"))
            error = (e.get("ctx") or {}).get("error")
            if isinstance(error, FieldError):  # model-level checks name their field
                loc, msg = loc + [error.field], str(error).split(": ", 1)[1]
            elif e.get("type") == "json_invalid" and len(loc) == 2:
                loc, msg = ["body"], f"invalid JSON at character {loc[1]} ({error or 'decode error'})"
            elif loc == ["body"] and isinstance(e.get("input"), (bytes, str)):  # not read as JSON
                msg = (f"the body is not JSON: send a JSON object with 'Content-Type: application/json' "
                       f"(got Content-Type: {content_type or 'none'})")
            details.append({"field": ".".join(loc), "message": msg, "type": e.get("type")})
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        return JSONResponse(status_code=422, content={"error": f"{first['field']}: {first['message']}",
                                                      "detail": details})

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": str(exc), "field": exc.field})

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": str(exc)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and not detail.startswith("body"):  # a body that is not UTF-8 JSON
            detail = f"body: {detail[:1].lower()}{detail[1:]} (send UTF-8 JSON)"
        return JSONResponse(status_code=exc.status_code, content={"error": detail},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(ClosedError)
    async def closing(request: Request, exc: ClosedError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": str(exc)}, headers={"Connection": "close"})


__all__ = ["ServeConfig", "create_app", "model_runners"]
