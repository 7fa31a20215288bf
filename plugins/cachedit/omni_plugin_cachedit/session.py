"""Containment of cache-dit's pipeline patch, and its per-call refresh.

``cache_dit.enable_cache(pipe)`` patches ``type(pipe).__call__`` (and sets ``_is_cached`` /
``_original_call`` on the *class*) so that every call first resets the pipeline's cache contexts.
Left on the shared diffusers class, that wrapper would outlive the pipeline, keep it alive through
its closure, run for every other instance of the class, and nest once per enabled instance. omni
therefore gives the pipeline a private subclass (same name and module, so cache-dit's name-based
adapter lookup still matches) before enabling, and restores the original class on undo.

On top of cache-dit's wrapper, :func:`install_call_refresh` adapts the per-context configs to each
call before cache-dit builds that call's fresh contexts from them: the real ``num_inference_steps``
(and the SCM mask sized for it), and whether this call runs CFG as separate denoiser calls.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from omni.sdk import hook_snapshot

_MISSING = object()
# attributes cache-dit's patch functors leave on the modules after disable_cache()
_LEFTOVER_ATTRS = ("_is_patched",)


def isolate_class(pipe) -> Callable[[], None]:
    """Give ``pipe`` a private subclass; returns the function that restores the original class."""
    original = type(pipe)
    private = type(original.__name__, (original,), {"__module__": original.__module__,
                                                     "__qualname__": original.__qualname__,
                                                     "__doc__": original.__doc__})
    pipe.__class__ = private

    def restore() -> None:
        pipe.__class__ = original

    return restore


def snapshot_modules(modules) -> Callable[[], None]:
    """Remember what cache-dit changes on the denoiser modules and ``disable_cache`` does not put back;
    returns the function restoring it: instance-level ``forward``s (the patch functors replace some;
    ``omni.sdk.hook_snapshot``), the ``_is_patched`` marker, and the order of child modules (cache-dit
    swaps block lists in with ``unittest.mock.patch.object`` during every forward, which re-adds them at
    the end of ``_modules``, reordering ``named_modules()`` / ``state_dict()``)."""
    forwards = [hook_snapshot(root) for root in modules]
    saved = [(m, {a for a in _LEFTOVER_ATTRS if a in m.__dict__}, list(m._modules))
             for root in modules for m in root.modules()]

    def restore() -> None:
        for restore_forwards in forwards:
            restore_forwards()
        for module, had, order in saved:
            for attr in _LEFTOVER_ATTRS:
                if attr not in had:
                    module.__dict__.pop(attr, None)
            if list(module._modules) != order:
                current = dict(module._modules)
                module._modules.clear()
                module._modules.update({k: current.pop(k) for k in order if k in current})
                module._modules.update(current)

    return restore


def context_configs(pipe, denoisers) -> list[Any]:
    """The per-context cache configs cache-dit rebuilds its contexts from at every pipeline call."""
    seen: dict[int, Any] = {}
    holders = [pipe] + [m for d in denoisers for m in d.modules()]
    for holder in holders:
        kwargs = holder.__dict__.get("_context_kwargs")
        if isinstance(kwargs, dict) and kwargs.get("cache_config") is not None:
            seen.setdefault(id(kwargs["cache_config"]), kwargs["cache_config"])
    return list(seen.values())


def _call_value(signature: inspect.Signature, args: tuple, kwargs: dict, name: str) -> Any:
    if name not in signature.parameters:
        return _MISSING
    try:
        bound = signature.bind_partial(None, *args, **kwargs)
    except TypeError:
        return kwargs.get(name, _MISSING)
    if name in bound.arguments:
        return bound.arguments[name]
    default = signature.parameters[name].default
    return _MISSING if default is inspect.Parameter.empty else default


def separate_cfg(signature: inspect.Signature, args: tuple, kwargs: dict) -> bool | None:
    """Whether this call runs CFG as separate denoiser calls, for pipelines with diffusers' true-CFG
    convention (``true_cfg_scale > 1`` and a negative prompt: Flux, Qwen-Image, ...); ``None`` (let
    cache-dit's adapter decide) for the others. cache-dit's adapters hard-code it per pipeline class,
    which is wrong for Flux with true CFG and for Qwen-Image without a negative prompt."""
    scale = _call_value(signature, args, kwargs, "true_cfg_scale")
    if scale is _MISSING:
        return None
    negative = any(_call_value(signature, args, kwargs, n) not in (_MISSING, None)
                   for n in ("negative_prompt", "negative_prompt_embeds"))
    return bool(scale is not None and float(scale) > 1 and negative)


def install_call_refresh(pipe, configs: list[Any], steps_mask: Callable[[int], list[int] | None]) -> None:
    """Wrap the (private) class's cache-dit ``__call__`` so that each call first sets, in every
    per-context config, the call's step count, the SCM mask for it and the CFG layout."""
    cls = type(pipe)
    cached_call = cls.__call__
    signature = inspect.signature(cls._original_call if hasattr(cls, "_original_call") else cached_call)
    adapter_cfg = {id(c): c.enable_separate_cfg for c in configs}

    def refreshing_call(self, *args, **kwargs):
        steps = _call_value(signature, args, kwargs, "num_inference_steps")
        steps = None if steps is _MISSING or steps is None else int(steps)
        mask = steps_mask(steps) if steps is not None else None
        separate = separate_cfg(signature, args, kwargs)
        for config in configs:
            config.num_inference_steps = steps
            config.steps_computation_mask = mask
            config.enable_separate_cfg = adapter_cfg[id(config)] if separate is None else separate
        return cached_call(self, *args, **kwargs)

    setattr(refreshing_call, "__wrapped__", cached_call)  # inspect.signature -> the pipeline's own signature
    refreshing_call.__name__ = "__call__"
    refreshing_call.__doc__ = cached_call.__doc__
    cls.__call__ = refreshing_call
