"""The FastAPI application: state, the outermost middleware (metrics per route and status, any
unexpected exception -> a 500 error body and one log line), error handlers, authentication, and the
routes in :mod:`.routes_openai` and :mod:`.routes_jobs`."""

from __future__ import annotations

import inspect
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import Message

from omni_plugin_serve.errors import ApiError, error_response, from_engine, log
from omni_plugin_serve.fields import Submission
from omni_plugin_serve.jobs import Jobs, Live
from omni_plugin_serve.metrics import Metrics
from omni_plugin_serve.store import Store
from omni_plugin_serve.uploads import MiB, parse_body, read_bounded


@dataclass
class State:
    engine: Any
    store: Store
    jobs: Jobs
    metrics: Metrics
    api_key: str | None = None
    max_upload: int = 32 * MiB  # bytes of a request body (--max-upload)
    started: float = field(default_factory=time.time)

    @property
    def takes_prompt(self) -> bool | None:
        """Whether the loaded pipeline takes a prompt (None while loading, or with no pipeline in this
        process: omni-plugin-ray's engine)."""
        pipe = getattr(self.engine, "pipe", None)
        return None if pipe is None else "prompt" in inspect.signature(type(pipe).__call__).parameters

    def check_ready(self) -> None:
        if self.engine.ready:
            return
        if self.engine.load_error is not None:
            raise ApiError(503, f"{self.engine.model} failed to load", code="load_failed")
        raise ApiError(503, f"loading {self.engine.model}; retry when /health/ready answers 200", code="not_ready")

    async def submit(self, kind: str, sub: Submission) -> Live:
        """Enqueue a parsed request; the Engine's refusals become 400/413/429/503."""
        from omni.sdk import EngineClosed, QueueFull, UsageError

        if not self.jobs.accepting:
            raise ApiError(503, "the server is shutting down", code="shutting_down")
        self.check_ready()
        try:
            return await self.jobs.submit(kind, sub.fields, sub.meta)
        except (UsageError, QueueFull, EngineClosed) as exc:
            raise from_engine(exc, sub.names) from None


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON object, or multipart/urlencoded form fields (files as :class:`~.uploads.Upload`), of at
    most ``--max-upload`` bytes (413 above)."""
    return await parse_body(request, await read_bounded(request, state_of(request).max_upload))


class Observe:
    """Outermost ASGI middleware: counts every response by route template, method and status, and
    turns an unexpected exception into a 500 error body (the message only, never a traceback)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, started = [500], [False]

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0], started[0] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors end
            where = f"{scope['method']} {scope['path']}"
            if started[0]:
                log.error("%s failed while responding: %s: %s", where, type(exc).__name__, exc)
            else:
                response = error_response(500, f"internal error ({type(exc).__name__}: {exc})", code="internal",
                                          where=where)
                await response(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.request(route, scope["method"], status[0])


def create_app(state: State) -> FastAPI:
    from omni_plugin_serve import routes_inputs, routes_jobs, routes_openai

    app = FastAPI(title="omni serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.omni = state

    def where(request: Request) -> str:
        return f"{request.method} {request.url.path}"

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code, where=where(request))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, message, where=where(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = str(first.get("loc", ("", "?"))[-1])
        return error_response(400, f"{param}: {first.get('msg', 'invalid')}", param=param, code="invalid_value",
                              where=where(request))

    def authorize(request: Request) -> None:
        if state.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {state.api_key}".encode()):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'", code="invalid_api_key")

    protected = [Depends(authorize)]
    app.include_router(routes_openai.router, dependencies=protected)
    app.include_router(routes_inputs.router, dependencies=protected)
    app.include_router(routes_jobs.router, dependencies=protected)
    app.include_router(routes_jobs.public)
    app.add_middleware(Observe, metrics=state.metrics)
    return app


def state_of(request: Request) -> State:
    return request.app.state.omni
