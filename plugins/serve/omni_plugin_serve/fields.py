"""Request bodies -> ``Engine.submit`` fields, one parser per endpoint (OpenAI's names, vLLM-Omni's
form fields, the Engine's own names). Unknown fields are refused, never ignored; the Engine then
validates values against the model and the server's limits. ``names`` maps Engine field names back
to the names the client used, so every error names the field as the client wrote it. Input images
(``image``, ``mask``, ``input_reference``, ``video``) are uploaded files only (:mod:`.uploads`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from omni_plugin_serve.errors import ApiError
from omni_plugin_serve.uploads import read_mask, upload

FPS = 8  # frames per second of written MP4s when a request gives none (save_output's default)
MAX_FPS = 120
SIZE = re.compile(r"\s*(\d{1,6})\s*[xX]\s*(\d{1,6})\s*")
BRACKETS = re.compile(r"(\w+)\[([^\]]*)\]")  # form names of the openai client: image[] (a list), options[key]
OMNI_FIELDS = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale", "options")
IMAGE_FIELDS = ("prompt", "model", "n", "size", "response_format", *OMNI_FIELDS)
EDIT_FIELDS = ("image", "mask", *IMAGE_FIELDS, "strength", "task")
VIDEO_FIELDS = ("prompt", "model", "seconds", "size", "width", "height", "num_frames", "fps", "input_reference",
                "strength", "task", *OMNI_FIELDS)
JOB_FIELDS = ("prompt", "width", "height", "num_frames", "num_images", "fps", "image", "mask", "video", "strength",
              "task", *OMNI_FIELDS)
ELSEWHERE = {"image": "an input image goes to POST /v1/images/edits (or POST /v1/jobs)",
             "mask": "a mask goes to POST /v1/images/edits (or POST /v1/jobs) with its image",
             "input_reference": "an image reference goes to POST /v1/videos on an image-to-video model",
             "stream": "streamed partial images are not supported; follow /v1/jobs/{id}/events"}


@dataclass
class Submission:
    """What a request asks of the Engine (``fields``), what the server keeps beside it (``meta``:
    fps, response format, requested seconds) and the client's names for Engine fields."""

    fields: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def _form_names(body: dict[str, Any]) -> dict[str, Any]:
    """Form fields as the openai client writes them -> plain ones: an empty value is an absent one,
    ``image[]`` is ``image``, ``options[teacache.rel_l1_thresh]`` an entry of ``options``."""
    out: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in body.items():
        if value is None or value == "":
            continue
        match = BRACKETS.fullmatch(str(key))
        if match and match.group(1) == "options" and match.group(2):
            options[match.group(2)] = value
            continue
        out[match.group(1) if match and not match.group(2) else key] = value
    if options:
        if "options" in out:
            raise ApiError(400, "options: give options as one field or as options[KEY] fields, not both",
                           param="options", code="conflict")
        out["options"] = options
    return out


def _check_fields(body: dict[str, Any], allowed: tuple[str, ...], endpoint: str,
                  prompt_unless: tuple[str, ...] = (), prompt: bool = True) -> dict[str, Any]:
    """Known fields only; ``prompt`` required unless one of ``prompt_unless`` (an input image) is given
    or the pipeline takes no prompt (``prompt=False``: an image-to-video UNet)."""
    body = _form_names(body)
    for key in body:
        if key not in allowed:
            if key in ELSEWHERE:
                raise ApiError(400, f"{key}: {ELSEWHERE[key]}, not {endpoint}", param=key, code="unsupported")
            raise ApiError(400, f"{key}: unknown field for {endpoint} (accepted: {', '.join(allowed)})",
                           param=str(key)[:60], code="unknown_field")
    if prompt and "prompt" not in body and not any(k in body for k in prompt_unless):
        raise ApiError(400, "prompt: required", param="prompt", code="missing")
    return body


def _inputs(sub: Submission, body: dict[str, Any], image: str = "image") -> Submission:
    """Add the uploaded inputs (``image`` under the endpoint's name for it, ``mask``, ``video``) and
    ``strength``/``task`` to ``sub``; the mask's reading is a note for the report. A task the inputs
    imply is blamed on the input field."""
    sub.names["image"] = image
    if image in body:
        sub.fields["image"] = upload(image, body[image])
    if "mask" in body:
        sub.fields["mask"], note = read_mask(upload("mask", body["mask"]))
        sub.meta.setdefault("notes", []).append(note)
    if "video" in body:
        sub.fields["video"] = upload("video", body["video"])
    sub.fields.update({k: body[k] for k in ("strength", "task") if k in body})
    if "task" not in body and ("image" in sub.fields or "video" in sub.fields):
        sub.names["task"] = image if "image" in sub.fields else "video"
    return sub


def _model(body: dict[str, Any], model: str) -> None:
    if "model" in body and body["model"] != model:
        raise ApiError(400, f"model: this server serves {model!r}, not {str(body['model'])[:60]!r}", param="model",
                       code="model_not_found")


def _size(value: Any) -> tuple[int, int]:
    """"WIDTHxHEIGHT" -> (width, height)."""
    match = SIZE.fullmatch(str(value)) if isinstance(value, str) else None
    if match is None:
        raise ApiError(400, f"size: must be WIDTHxHEIGHT (e.g. 64x64), not {str(value)[:40]!r}", param="size",
                       code="invalid_value")
    return int(match.group(1)), int(match.group(2))


def _number(param: str, value: Any, lo: float, hi: float) -> float:
    try:
        out = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        out = float("nan")
    if not lo <= out <= hi:
        raise ApiError(400, f"{param}: must be a number in [{lo:g}, {hi:g}], not {str(value)[:40]!r}", param=param,
                       code="invalid_value")
    return out


def _options(value: Any) -> Any:
    """Per-request options: a mapping, or (form fields) its JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(400, "options: must be a JSON object of 'optimization.option' to a value",
                           param="options", code="invalid_value") from None
    return value


def _omni(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: body[k] for k in OMNI_FIELDS if k in body}
    if "options" in out:
        out["options"] = _options(out["options"])
    return out


def image_request(body: dict[str, Any], model: str) -> Submission:
    """``POST /v1/images/generations``: OpenAI's fields plus omni's."""
    return _images(_check_fields(body, IMAGE_FIELDS, "/v1/images/generations"), model)


def edit_request(body: dict[str, Any], model: str) -> Submission:
    """``POST /v1/images/edits``: OpenAI's multipart fields (an ``image`` file, an optional ``mask``
    file, ``prompt``, ``n``, ``size``, ...) plus omni's, ``strength`` and ``task``."""
    body = _check_fields(body, EDIT_FIELDS, "/v1/images/edits")
    if "image" not in body:
        raise ApiError(400, "image: required (the image to edit, as a file)", param="image", code="missing")
    return _inputs(_images(body, model), body)


def _images(body: dict[str, Any], model: str) -> Submission:
    _model(body, model)
    fields = {"prompt": body["prompt"], **_omni(body)}
    if "n" in body:
        fields["num_images"] = body["n"]
    if "size" in body and body["size"] != "auto":
        fields["width"], fields["height"] = _size(body["size"])
    fmt = body.get("response_format", "b64_json")
    if fmt not in ("b64_json", "url"):
        raise ApiError(400, f"response_format: must be b64_json or url, not {str(fmt)[:40]!r}",
                       param="response_format", code="invalid_value")
    return Submission(fields, {"response_format": fmt}, {"num_images": "n", "width": "size", "height": "size"})


def frames_for(seconds: float, fps: int, frames_multiple: int | None, frames_offset: int) -> int:
    """The smallest frame count the family takes (``multiple·k + offset``) covering ``seconds``."""
    n = max(1, round(seconds * fps))
    if frames_multiple:
        n += (frames_offset - n) % frames_multiple
    return n


def _fps(body: dict[str, Any]) -> int:
    fps = _number("fps", body.get("fps", FPS), 1, MAX_FPS)
    if not fps.is_integer():
        raise ApiError(400, f"fps: must be a whole number, not {body['fps']!r}", param="fps", code="invalid_value")
    return int(fps)


def video_request(body: dict[str, Any], model: str, limits: Any, prompt: bool = True) -> Submission:
    """``POST /v1/videos``: OpenAI's shape (``seconds``, ``size``) or vLLM-Omni's form fields
    (``width``, ``height``, ``num_frames``, ``fps``, ``num_inference_steps``, ``seed``), and
    ``input_reference`` (an image file) for image-to-video. ``prompt``: whether the pipeline takes one."""
    body = _check_fields(body, VIDEO_FIELDS, "/v1/videos", prompt_unless=("input_reference",), prompt=prompt)
    _model(body, model)
    fields = {k: body[k] for k in ("prompt",) if k in body} | _omni(body)
    names: dict[str, str] = {}
    meta: dict[str, Any] = {"fps": _fps(body)}
    if "size" in body:
        if "width" in body or "height" in body:
            raise ApiError(400, "size: give size or width/height, not both", param="size", code="conflict")
        fields["width"], fields["height"] = _size(body["size"])
        names.update(width="size", height="size")
    else:
        fields.update({k: body[k] for k in ("width", "height") if k in body})
    if "seconds" in body:
        if "num_frames" in body:
            raise ApiError(400, "seconds: give seconds or num_frames, not both", param="seconds", code="conflict")
        seconds = _number("seconds", body["seconds"], 0.001, 3600)
        fields["num_frames"] = frames_for(seconds, meta["fps"], limits.frames_multiple, limits.frames_offset)
        meta["seconds"] = str(body["seconds"])
        names["num_frames"] = "seconds"
    elif "num_frames" in body:
        fields["num_frames"] = body["num_frames"]
    return _inputs(Submission(fields, meta, names), body, image="input_reference")


def job_request(body: dict[str, Any], video: bool, prompt: bool = True) -> Submission:
    """``POST /v1/jobs``: the Engine's own field names (and ``fps`` for video). ``prompt``: whether the
    pipeline takes one."""
    body = _check_fields(body, JOB_FIELDS, "/v1/jobs", prompt_unless=("image", "video"), prompt=prompt)
    fields: dict[str, Any] = {k: body[k] for k in ("prompt", "width", "height", "num_frames", "num_images")
                              if k in body}
    fields.update(_omni(body))
    meta: dict[str, Any] = {}
    if video:
        meta["fps"] = _fps(body)
    elif "fps" in body:
        raise ApiError(400, "fps: this server's model makes images, not video", param="fps", code="invalid_value")
    return _inputs(Submission(fields, meta), body)
