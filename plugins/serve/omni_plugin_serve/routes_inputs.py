"""Requests with input images: OpenAI's image edits (``POST /v1/images/edits``: an image file, an
optional mask, synchronous like generations). Image-to-video is ``input_reference`` on
``POST /v1/videos`` (:mod:`.routes_openai`); the job API takes the same uploads (:mod:`.fields`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from omni_plugin_serve.app import read_body, state_of
from omni_plugin_serve.fields import edit_request
from omni_plugin_serve.routes_openai import check_modality, images_response

router = APIRouter()


@router.post("/v1/images/edits")
async def images_edits(request: Request) -> dict[str, Any]:
    check_modality(request, want_video=False)
    return await images_response(request, edit_request(await read_body(request), state_of(request).engine.model))
