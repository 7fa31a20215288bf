"""omni's built-in plugin: the default implementation of every stage hook.

It is registered like any other plugin (name ``omni.dispatch``) and runs after the declaring
plugin's own hook implementation: it imports the declaration's lazy ``impl`` (optimizations) or
``load`` (families) path and calls it with ``(ctx, step)``. Importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

from omni.hookspecs import hookimpl
from omni.plugins import import_path
from omni.runtime.context import RunContext, Step


def _call(ctx: RunContext, step: Step) -> Any:
    if step.family is not None:
        target = step.family.load
        if target is None:
            from omni.errors import ModelLoadError

            raise ModelLoadError(f"family {step.family.name!r} declares no load function")
    else:
        assert step.optimization is not None
        target = step.optimization.impl
        if target is None:
            return None
    return import_path(target)(ctx, step)


@hookimpl(trylast=True)
def omni_load(ctx: RunContext, step: Step) -> Any:
    return _call(ctx, step)


@hookimpl(trylast=True)
def omni_quantize(ctx: RunContext, step: Step) -> Any:
    return _call(ctx, step)


@hookimpl(trylast=True)
def omni_place(ctx: RunContext, step: Step) -> Any:
    return _call(ctx, step)


@hookimpl(trylast=True)
def omni_cache(ctx: RunContext, step: Step) -> Any:
    return _call(ctx, step)


@hookimpl(trylast=True)
def omni_compile(ctx: RunContext, step: Step) -> Any:
    return _call(ctx, step)


@hookimpl(trylast=True)
def omni_decode(ctx: RunContext, step: Step) -> Any:
    return _call(ctx, step)
