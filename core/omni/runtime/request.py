"""Request validation, before a generation starts: every field is checked against the pipeline's
signature, the family's ``Limits`` and the engine's own limits, and a bad one is a ``UsageError``
whose message starts with the field's name (servers map it to 400 with ``param``)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omni.errors import FieldError

MAX_SEED = 2**64 - 1
DEFAULT_PROMPT = "a red circle on a blue background"
KNOWN = ("prompt", "negative_prompt", "seed", "num_inference_steps", "height", "width", "num_frames",
         "guidance_scale", "num_images", "options", "extra", "image", "mask", "video", "strength", "task")


@dataclass(frozen=True)
class EngineLimits:
    """Limits an operator sets on top of the family's (``omni serve --max-size`` ...); None: none."""

    max_size: int | None = None
    max_steps: int | None = 1000
    max_n: int | None = 8
    max_frames: int | None = None


@dataclass
class Request:
    """A validated request: the pipeline keyword arguments and the per-request option overrides."""

    prompt: str
    seed: int
    args: dict[str, Any]
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    task: str = ""
    inputs: Any = None  # omni.runtime.inputs.Inputs
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "seed": self.seed, "task": self.task, **self.args,
                **(self.inputs.describe() if self.inputs is not None else {}),
                "options": {f"{n}.{k}": v for n, opts in self.options.items() for k, v in opts.items()}}


def _int(param: str, value: Any, lo: int, hi: int | None = None, status: int = 400) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        else:
            raise FieldError(param, f"must be an integer, not {str(value)[:40]!r}")
    if value < lo:
        raise FieldError(param, f"must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise FieldError(param, f"must be at most {hi}, got {value}", status=status)
    return value


def _float(param: str, value: Any, lo: float = 0.0, hi: float = 1000.0) -> float:
    try:
        out = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise FieldError(param, f"must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(out) or not lo <= out <= hi:
        raise FieldError(param, f"must be a finite number in [{lo:g}, {hi:g}], got {value!r}")
    return out


def _accepts(pipe: Any) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(type(pipe).__call__).parameters)
    return {k: p for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}


def validate_request(session: Any, *, limits: EngineLimits | None = None, **fields: Any) -> Request:
    """Check one request against ``session`` (a :class:`~omni.runtime.session.Session`)."""
    limits = limits or EngineLimits()
    unknown = sorted(set(fields) - set(KNOWN))
    if unknown:
        from omni.names import did_you_mean

        raise FieldError(unknown[0], f"unknown request field{did_you_mean(unknown[0], KNOWN)}")
    from omni.runtime.inputs import read_inputs
    from omni.runtime.tasks import base_task, choose_task, pipeline_for

    prep = session.prepared
    fam_limits = prep.limits
    video = session.family.facts.modality == "video"
    inputs = read_inputs(image=fields.get("image"), mask=fields.get("mask"), video=fields.get("video"),
                         strength=fields.get("strength"))
    requested_task = fields.get("task")
    if requested_task is not None and not isinstance(requested_task, str):
        raise FieldError("task", "must be a task name")
    base = base_task(session.family, session.pipe)
    task = choose_task(session.family, base, inputs, requested_task)
    if task != base:
        _check_task_cells(session, task)
    if inputs.video is not None and video and fam_limits.frames_multiple:  # a video-to-video pipeline cuts the rest
        n, m, k = len(inputs.video), fam_limits.frames_multiple, fam_limits.frames_offset
        if n % m != k % m:
            raise FieldError("video", f"{n} frames: {session.family.name} takes {m}k+{k} frames "
                                      f"(e.g. {max(k, n - (n - k) % m)})")
    pipe = pipeline_for(session, task)
    accepts = _accepts(pipe)
    args = prep.generation_defaults()
    model = prep.resolved.model
    if model is not None and task in model.task_generation:
        args.update(model.task_generation[task])
    # defaults are omni's, not the user's: one the task's pipeline does not take (num_frames for a
    # video-to-video pipeline) is dropped; a user-given argument it does not take is an error below
    args = {k: v for k, v in args.items() if k in accepts}
    notes = list(inputs.notes)
    source = inputs.image if inputs.image is not None else (inputs.video[0] if inputs.video else None)
    if source is not None:  # the output size follows the input unless the request names one
        for name, value in (("width", source.size[0]), ("height", source.size[1])):
            if fields.get(name) is None and name in accepts:
                if limits.max_size is not None and value > limits.max_size:  # as if the request had asked it
                    kind = "image" if inputs.image is not None else "video"
                    raise FieldError(kind, f"the {kind} is {source.size[0]}x{source.size[1]}: its {name} {value} is "
                                           f"over the limit of {limits.max_size}; pass a smaller size", status=413)
                args[name] = value
            elif fields.get(name) is not None and fields[name] != value:
                notes.append(f"{'image' if inputs.image is not None else 'video'}: {name} {value} resized to "
                             f"{fields[name]} by the pipeline")
    prompt = fields.get("prompt", "")
    if prompt is None:  # omni.run's default: the demo prompt where the pipeline takes a prompt at all
        prompt = DEFAULT_PROMPT if "prompt" in accepts else ""
    if not isinstance(prompt, str):
        raise FieldError("prompt", "must be a string")
    if prompt and "prompt" not in accepts:
        raise FieldError("prompt", f"{type(pipe).__name__} takes no prompt (it is conditioned on the image)")
    seed = _int("seed", fields.get("seed") if fields.get("seed") is not None else 0, 0, MAX_SEED)
    if fields.get("negative_prompt") is not None:
        if not isinstance(fields["negative_prompt"], str):
            raise FieldError("negative_prompt", "must be a string")
        if "negative_prompt" not in accepts:
            raise FieldError("negative_prompt", f"{type(pipe).__name__} takes no negative prompt")
        args["negative_prompt"] = fields["negative_prompt"]
    args = _generation(session.family.name, video, fam_limits, limits, args, fields, lambda name: name if (
        fields.get(name) is not None or source is None) else ("image" if inputs.image is not None else "video"))
    if fields.get("num_images") is not None:
        n = _int("num_images", fields["num_images"], 1, limits.max_n, status=413)
        key = "num_videos_per_prompt" if video else "num_images_per_prompt"
        if key not in accepts:
            if n != 1:
                raise FieldError("num_images", f"{type(pipe).__name__} makes one output per prompt")
        else:
            args[key] = n
    extra = fields.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise FieldError("extra", "must be a mapping of pipeline arguments")
    for key, value in extra.items():
        if key in ("prompt", "generator", "output_type", "callback_on_step_end", "callback"):
            raise FieldError(str(key), "is set by omni")
        if key not in accepts:
            raise FieldError(str(key), f"{type(pipe).__name__} does not accept it")
        args[key] = value
    bad = sorted(k for k in args if k not in accepts)
    if bad:
        raise FieldError(bad[0], f"{type(pipe).__name__} does not accept it")
    options = per_request_options(session, fields.get("options") or {})
    return Request(prompt=prompt, seed=seed, args=args, options=options, task=task, inputs=inputs, notes=notes)


def _generation(family: str, video: bool, fam_limits: Any, limits: EngineLimits, args: dict[str, Any],
                fields: Mapping[str, Any], param_of: Any = lambda name: name) -> dict[str, Any]:
    """Steps, sizes, frames and guidance of a request, checked against the family's ``Limits`` and the
    engine's; -> ``args`` with them. ``param_of(name)``: the field to blame for a size (the input image
    when the size came from it)."""
    args = dict(args)
    if fields.get("num_inference_steps") is not None:
        args["num_inference_steps"] = _int("num_inference_steps", fields["num_inference_steps"], 1,
                                           limits.max_steps or 10_000, status=413)
    for name in ("height", "width"):
        if fields.get(name) is not None:
            args[name] = _int(name, fields[name], 1, limits.max_size, status=413)
    for name in ("height", "width"):
        if name in args:
            value = args[name]
            if value < fam_limits.smallest:
                raise FieldError(name, f"{value} is below {family}'s minimum {fam_limits.smallest}")
            if value % fam_limits.size_multiple:
                lower = value - value % fam_limits.size_multiple
                raise FieldError(param_of(name), f"{name} {value} is not a multiple of {fam_limits.size_multiple} "
                                                 f"for {family} (the pipeline would silently use "
                                                 f"{lower or fam_limits.size_multiple}); pass height and width")
    if fam_limits.max_pixels and args.get("height") and args.get("width"):
        if args["height"] * args["width"] > fam_limits.max_pixels:
            raise FieldError("height", f"{args['height']}x{args['width']} exceeds {family}'s maximum of "
                                       f"{fam_limits.max_pixels} pixels", status=413)
    if fields.get("num_frames") is not None:
        if not video:
            raise FieldError("num_frames", f"{family} makes images, not video")
        hi = min(x for x in (limits.max_frames, fam_limits.max_frames, 100_000) if x is not None)
        args["num_frames"] = _int("num_frames", fields["num_frames"], 1, hi, status=413)
    if video and "num_frames" in args and fam_limits.frames_multiple:
        n, m, k = args["num_frames"], fam_limits.frames_multiple, fam_limits.frames_offset
        if n % m != k % m:
            raise FieldError("num_frames", f"{n} frames: {family} takes {m}k+{k} frames "
                                           f"(e.g. {max(k, n - (n - k) % m)})")
    if fields.get("guidance_scale") is not None:
        args["guidance_scale"] = _float("guidance_scale", fields["guidance_scale"])
    return args


def check_generation(prepared: Any, *, limits: EngineLimits | None = None, **fields: Any) -> dict[str, Any]:
    """The request checks that need no loaded pipeline (seed, steps, sizes, frames, guidance), for
    ``omni run`` to refuse bad arguments before loading; the Engine runs the same checks again in
    :func:`validate_request`. -> the generation arguments."""
    _int("seed", fields.get("seed") if fields.get("seed") is not None else 0, 0, MAX_SEED)
    family = prepared.family
    return _generation(family.name, family.facts.modality == "video", prepared.limits, limits or EngineLimits(),
                       prepared.generation_defaults(), fields)


def _check_task_cells(session: Any, task: str) -> None:
    """A step applied on this engine that is unsupported for ``task`` makes the request fail, naming it."""
    from omni.matrix import CompatMatrix
    from omni.specs import Support

    matrix = CompatMatrix(session.prepared.registry)
    for name in session.ctx.applied:
        cell = matrix.cell(session.family.name, name, task)
        if cell.status is Support.UNSUPPORTED:
            raise FieldError("task", f"{name} is applied on this engine and does not work for {task}: "
                                     f"{'; '.join(cell.reasons)}")


def per_request_options(session: Any, raw: Any) -> dict[str, dict[str, Any]]:
    """``{"teacache.rel_l1_thresh": 0.3}`` -> ``{"teacache": {"rel_l1_thresh": 0.3}}``, checked: the
    optimization is applied, the option is declared ``per_request``, the value coerces."""
    if not isinstance(raw, Mapping):
        raise FieldError("options", "must be a mapping of 'optimization.option' to a value")
    registry = session.prepared.registry
    out: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        name, dot, option = str(key).partition(".")
        if not dot or not option:
            raise FieldError(f"options.{key}", "must be written 'optimization.option'")
        declared = registry.find("optimization", name)
        if declared is None:
            raise FieldError(f"options.{key}", f"no optimization named {name!r}")
        spec = declared.spec
        if spec.name not in session.ctx.applied:
            raise FieldError(f"options.{key}", f"{spec.name} is not applied on this engine")
        try:
            opt = spec.option(option)
        except KeyError:
            raise FieldError(f"options.{key}", f"{spec.name} has no option {option!r}") from None
        if not opt.per_request:
            raise FieldError(f"options.{key}", f"{spec.name}.{option} needs a reload (it is not a per-request "
                                               "option); start the engine with it instead")
        if session.ctx.applied[spec.name].reconfigure is None:
            raise FieldError(f"options.{key}", f"{spec.name} cannot change options without a reload")
        try:
            out.setdefault(spec.name, {})[option] = opt.coerce(value)
        except ValueError as exc:
            raise FieldError(f"options.{key}", str(exc)) from None
    return out
