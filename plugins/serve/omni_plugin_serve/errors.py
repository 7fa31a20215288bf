"""Errors as OpenAI writes them: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
status, one log line each, never a stack trace in a response."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

log = logging.getLogger("omni.serve")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
         405: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
         429: "rate_limit_error", 500: "server_error", 503: "service_unavailable"}


class ApiError(Exception):
    """An error response: ``status``, a one-line ``message``, the request ``param`` it is about."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def from_engine(exc: Exception, names: dict[str, str] | None = None) -> ApiError:
    """An Engine refusal as an ApiError: ``FieldError`` -> 400/413 naming the client's field (``names``
    maps Engine field names to the endpoint's), ``QueueFull`` -> 429, ``EngineClosed`` -> 503, other
    ``UsageError`` -> 400."""
    from omni.sdk import EngineClosed, FieldError, QueueFull

    if isinstance(exc, FieldError):
        names = names or {}
        head, _, rest = exc.param.partition(".")
        param = names.get(exc.param) or (names.get(head, head) + "." + rest if rest else exc.param)
        message = str(exc)
        if message.startswith(exc.param + ":"):
            message = param + message[len(exc.param):]
        return ApiError(exc.status, message, param=param, code="invalid_value" if exc.status == 400 else "over_limit")
    if isinstance(exc, QueueFull):
        return ApiError(429, str(exc), code="queue_full")
    if isinstance(exc, EngineClosed):
        return ApiError(503, str(exc), code="shutting_down")
    return ApiError(400, str(exc), code="invalid_request")


def error_response(status: int, message: str, *, param: str | None = None, code: str | None = None,
                   where: str | None = "") -> JSONResponse:
    """The error body, and its one log line (none when ``where`` is None: a readiness probe's 503)."""
    message = " ".join(str(message).split())  # one line, whatever the cause wrote
    if where is not None:
        log.warning("%s %d %s%s", where, status, message, f" (param {param})" if param else "")
    body: dict[str, Any] = {"message": message, "type": TYPES.get(status, "server_error"), "param": param,
                            "code": code}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)
