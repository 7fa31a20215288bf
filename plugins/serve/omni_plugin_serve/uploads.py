"""Request bodies and the files in them: a body is read to at most ``--max-upload`` bytes (413 above,
nothing kept past the limit), form files become :class:`Upload` (bytes in memory: no request field
ever names a file the server reads or writes), and a mask is read in the server's one convention
(transparent = edit where the mask has an alpha channel, as OpenAI's; otherwise white = repaint, as
diffusers'), with a note for the report either way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from omni_plugin_serve.errors import ApiError, from_engine

MiB = 2**20
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Upload:
    """A file part of a form: its bytes (the client's file name only ever appears in messages)."""

    data: bytes = field(repr=False)
    filename: str = ""


def _limit_text(limit: int) -> str:
    return f"{limit / MiB:g} MiB" if limit >= MiB else f"{limit} bytes"


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 when it is over ``limit`` bytes. A body up to twice the limit
    is read to its end without keeping the excess, so the client is done sending when it reads the 413;
    a larger one (by its Content-Length or as it streams) is cut off there."""
    too_large = ApiError(413, f"the request body is over the {_limit_text(limit)} limit (--max-upload)",
                         code="over_limit")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 2 * limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 2 * limit:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise too_large
    return b"".join(chunks)


async def parse_body(request: Request, body: bytes) -> dict[str, Any]:
    """A JSON object, or form fields: files as :class:`Upload`, a repeated field as a list of its values."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in FORMS:
        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form()
        except Exception as exc:  # noqa: BLE001 - a malformed form is the client's error
            detail = getattr(exc, "detail", None) or exc
            raise ApiError(400, f"the form body cannot be read: {detail}", code="invalid_body") from None
        out: dict[str, Any] = {}
        try:
            for key, item in form.multi_items():
                value: Any = item
                if isinstance(item, UploadFile):
                    value = Upload(await item.read(), item.filename or "")
                if key in out:
                    value = [*(out[key] if isinstance(out[key], list) else [out[key]]), value]
                out[key] = value
        finally:
            await form.close()
        return out
    if ctype not in ("application/json", ""):
        raise ApiError(400, f"unsupported content type {ctype!r}: send JSON or a form", code="invalid_body")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        raise ApiError(400, "the body is not valid JSON", code="invalid_body") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_body")
    return parsed


def upload(param: str, value: Any) -> bytes:
    """The bytes of an uploaded file field; anything else (a path, a URL, a JSON value) is refused."""
    if isinstance(value, list):
        raise ApiError(400, f"{param}: one file per request, not {len(value)}", param=param, code="invalid_value")
    if not isinstance(value, Upload):
        raise ApiError(400, f"{param}: must be an uploaded file (a file part of a multipart/form-data body)",
                       param=param, code="invalid_value")
    if not value.data:
        raise ApiError(400, f"{param}: the uploaded file is empty", param=param, code="invalid_value")
    return value.data


def read_mask(data: bytes) -> tuple[Any, str]:
    """A mask upload -> (a PIL image in diffusers' convention, white = repaint; the note saying how it
    was read). With an alpha channel it is OpenAI's convention: the edit area is where the mask is
    transparent, so the mask becomes ``255 - alpha``; one with no transparent pixel marks nothing and is
    refused. Without alpha it already is white = repaint."""
    from omni.sdk import FieldError, open_image

    try:
        mask = open_image("mask", data)
    except FieldError as exc:
        raise from_engine(exc) from None
    if not mask.has_transparency_data:
        return mask, f"mask: {mask.mode} without alpha read as white = repaint"
    alpha = mask.convert("RGBA").getchannel("A")
    if alpha.getextrema()[0] == 255:
        raise ApiError(400, "mask: its alpha channel has no transparent pixel, so it marks nothing to edit "
                            "(transparent = edit area; or send a mask without alpha, white = repaint)",
                       param="mask", code="invalid_value")
    return alpha.point(lambda a: 255 - a), (f"mask: {mask.mode} with alpha read as OpenAI's convention "
                                            "(transparent = edit), converted to white = repaint (255 - alpha)")
