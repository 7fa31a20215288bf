"""Tasks: which task a request asks for (from its inputs, or named), and the pipeline that runs it.

A family declares its tasks (``FamilyFacts.tasks``) and which pipeline class runs each
(``FamilySpec.task_pipelines``). A request for another task than the loaded pipeline's gets that class
built from the same components with diffusers' ``from_pipe`` (no weights loaded twice; the optimizations
applied to the shared modules stay applied), built once per session."""

from __future__ import annotations

import inspect
import threading
from typing import Any

from omni.errors import FieldError
from omni.runtime.inputs import Inputs

class TaskUnavailable(FieldError):
    """This model cannot run the task at all (a component the task's pipeline needs is missing): not a bad
    request field, a property of the model (``omni verify`` reports such cells unavailable)."""


NEEDS = {"t2i": (), "t2v": (), "i2i": ("image",), "inpaint": ("image", "mask"), "edit": ("image",),
         "i2v": ("image",), "v2v": ("video",)}
PIPELINE_ARGS = {"image": "image", "mask": "mask_image", "video": "video"}
_LOCK = threading.Lock()


def base_task(family: Any, pipe: Any) -> str:
    """The task the loaded pipeline itself runs."""
    cls = type(pipe).__name__
    for task, name in family.task_pipelines.items():
        if name == cls:
            return task
    tasks = family.facts.tasks
    text = "t2v" if family.facts.modality == "video" else "t2i"
    return text if text in tasks or not tasks else tasks[0]


def choose_task(family: Any, base: str, inputs: Inputs, requested: str | None) -> str:
    """The task of a request: the one named, else the one its inputs imply; checked against the family."""
    tasks = tuple(dict.fromkeys((base, *family.facts.tasks)))
    if requested is not None:
        if requested not in tasks:
            raise FieldError("task", f"{family.name} runs {', '.join(tasks)}; not {requested!r}")
        task = requested
    elif inputs.mask is not None:
        task = "inpaint"
    elif inputs.video is not None:
        task = "v2v"
    elif inputs.image is not None:
        image_tasks = [t for t in tasks if NEEDS[t] == ("image",)]
        if base in image_tasks:
            task = base
        elif not image_tasks:
            raise FieldError("image", f"{family.name} runs {', '.join(tasks)}: none takes an image")
        else:
            task = image_tasks[0]
    else:
        task = base
    if task not in tasks:
        raise FieldError("task", f"{family.name} runs {', '.join(tasks)}; these inputs ask for {task}")
    given = {name for name in ("image", "mask", "video") if getattr(inputs, name) is not None}
    missing = [n for n in NEEDS[task] if n not in given]
    if missing:
        raise FieldError(missing[0], f"task {task} needs {' and '.join(NEEDS[task])}")
    extra = sorted(given - set(NEEDS[task]))
    if extra:
        raise FieldError(extra[0], f"task {task} takes no {extra[0]}")
    return task


def pipeline_for(session: Any, task: str) -> Any:
    """The pipeline that runs ``task`` on this session (built once with ``from_pipe``)."""
    family = session.family
    if task == base_task(family, session.pipe):
        return session.pipe
    name = family.task_pipelines.get(task)
    if name is None:
        raise FieldError("task", f"{family.name} declares no pipeline for {task}")
    cache = session.__dict__.setdefault("_task_pipelines", {})
    with _LOCK:
        if task not in cache:
            import diffusers

            cls = getattr(diffusers, name, None)
            if cls is None:
                raise FieldError("task", f"diffusers {diffusers.__version__} has no {name} (needed for {task})")
            expected, _ = cls._get_signature_keys(cls)
            missing = [m for m in expected if m not in session.pipe.components and m not in cls._optional_components]
            if missing:
                raise TaskUnavailable("task", f"{name} cannot be built from this model's components: it needs "
                                         f"{', '.join(missing)}, which this model does not have")
            try:
                pipe = _from_pipe(cls, session.pipe)
            except Exception as exc:  # noqa: BLE001 - a component the task needs is missing from this model
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise TaskUnavailable("task", f"{name} cannot be built from this model's components: {first}") from None
            if family.task_check is not None:
                from omni.behaviour import resolve

                why = resolve(family.task_check)(task, pipe)
                if why:
                    raise TaskUnavailable("task", f"{name} cannot run {task} on this model: {why}")
            pipe.set_progress_bar_config(disable=True)
            cache[task] = pipe
        return cache[task]


def _from_pipe(cls: Any, pipe: Any) -> Any:
    """``cls.from_pipe(pipe)`` without its last step: diffusers 0.42 ends ``from_pipe`` with
    ``new_pipeline.to(dtype=...)`` (float32 unless told otherwise), which would cast the *shared* modules of a
    bfloat16 engine and refuses quantized modules (torchao, GGUF) outright. The components are shared as they
    are, so no cast is needed: build through a subclass whose ``to`` does nothing, then give the pipeline its
    real class."""

    class _SharedComponents(cls):  # type: ignore[misc,valid-type]
        def to(self, *args: Any, **kwargs: Any) -> Any:
            return self

    _SharedComponents.__name__, _SharedComponents.__qualname__ = cls.__name__, cls.__qualname__
    _SharedComponents.__module__ = cls.__module__
    built = _SharedComponents.from_pipe(pipe)
    built.__class__ = cls
    return built


def input_kwargs(pipe: Any, inputs: Inputs) -> dict[str, Any]:
    """The pipeline keyword arguments for the inputs (``mask`` -> ``mask_image``, ``strength``)."""
    params = inspect.signature(type(pipe).__call__).parameters
    out: dict[str, Any] = {}
    for field, arg in PIPELINE_ARGS.items():
        value = getattr(inputs, field)
        if value is not None:
            if arg not in params:
                raise FieldError(field, f"{type(pipe).__name__} takes no {arg}")
            out[arg] = value
    if inputs.strength is not None:
        if "strength" not in params:
            raise FieldError("strength", f"{type(pipe).__name__} takes no strength")
        out["strength"] = inputs.strength
    return out
