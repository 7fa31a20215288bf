"""What omni adds around a diffusers cache on one denoiser: a cache context when the pipeline sets
none, the current timestep for callbacks, and a per-call "computed"/"reused" flag.

Written here because diffusers keeps no hit counters (its cache hooks record no per-call outcome). Two
readers:

* block-level caches (FBC, MagCache): the leader hook's shared state says ``should_compute``
  after the call — read outside any compiled region, so it also works with regional compile;
* module-level caches (TaylorSeer, PAB, FasterCache): each hooked module's
  ``fn_ref.original_forward`` (what the cache hook calls when it really computes) is wrapped
  with a counter; a call is "reused" when any hooked module did not run.

Everything installed here is removed by :meth:`Watch.remove`, in the reverse order; the cache's own
hooks are removed by the caller (``disable_cache`` or by hook name).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import BaseState, CacheContext, StateManager, _set_cache_context

from omni.sdk import HitFlags

PROBE = "omni_context_probe"


class _NoState(BaseState):
    def reset(self, *args, **kwargs) -> None:
        pass


class ContextProbe(ModelHook):
    """A pass-through stateful hook on the denoiser: the pipeline's ``cache_context`` reaches its
    StateManager, so omni knows which branch ("cond"/"uncond") a call belongs to, and diffusers'
    end-of-call reset reaches ``on_reset``."""

    _is_stateful = True

    def __init__(self, on_reset: Callable[[], None]) -> None:
        super().__init__()
        # diffusers annotates StateManager's state_cls as an instance (BaseState); it takes the class
        self.state_manager = StateManager(_NoState)  # type: ignore[arg-type]
        self.on_reset = on_reset

    def context_name(self) -> str:
        ctx = self.state_manager._context
        return ctx.name if ctx is not None else "inference"

    def reset_state(self, module):
        self.state_manager.reset()
        self.on_reset()
        return module


def hooked(root: torch.nn.Module, hook_name: str) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of every module under ``root`` carrying diffusers hook ``hook_name``."""
    out = []
    for name, module in root.named_modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None and hook_name in registry.hooks:
            out.append((name, module))
    return out


def _registry(module: torch.nn.Module) -> HookRegistry:
    """The diffusers hook registry of a module that carries one."""
    return getattr(module, "_diffusers_hook")


def hooks_named(root: torch.nn.Module, hook_name: str) -> list[ModelHook]:
    """The ``hook_name`` hook objects under ``root`` (to read their state or retune them)."""
    return [_registry(module).hooks[hook_name] for _, module in hooked(root, hook_name)]


def _restore_forward(hook: ModelHook, original: Any) -> None:
    hook.fn_ref.original_forward = original


def _timestep_of(args, kwargs) -> float | None:
    t = kwargs.get("timestep", args[1] if len(args) > 1 else None)
    if torch.is_tensor(t):
        return float(t.flatten()[0]) if t.numel() else None
    return float(t) if isinstance(t, (int, float)) else None


class Watch:
    """Torch forward hooks on one denoiser (outside diffusers' hook chain, so they see every call)."""

    def __init__(self, module: torch.nn.Module, flags: HitFlags) -> None:
        self.module = module
        self.flags = flags
        self.timestep: float | None = None
        self.decide: Callable[[], bool] | None = None  # -> True when this call computed everything
        self.before: list[Callable[[], None]] = []
        self.after: list[Callable[[], None]] = []
        self._handles: list = []
        self._restores: list[Callable[[], None]] = []
        self.probe: ContextProbe | None = None
        self._states: list[dict[str, object]] = []  # per-context hook states (per_context)

    def attach(self) -> None:
        """Install the torch hooks (after every check passed)."""
        self._handles = [self.module.register_forward_pre_hook(self._pre, with_kwargs=True),
                         self.module.register_forward_hook(self._post)]

    def _pre(self, module, args, kwargs):
        self.timestep = _timestep_of(args, kwargs)
        if not _has_context(module):  # SD/SDXL/SD3 pipelines never call cache_context
            _set_cache_context(module, CacheContext(name="inference"))
        for fn in self.before:
            fn()
        return None

    def _post(self, module, args, output):
        for fn in self.after:
            fn()
        if self.decide is not None:
            self.flags.record(self.decide())
        return None

    # ---------------------------------------------------------------- readers
    def read_leader_state(self, hook_name: str) -> None:
        """Block-level caches: ``should_compute`` of the leader hook's shared state after the call."""
        found = hooked(self.module, hook_name)
        if not found:
            raise ValueError(f"no module carries the {hook_name} hook")
        hook: Any = _registry(found[0][1]).hooks[hook_name]  # the block cache's stateful leader hook
        self.decide = lambda: bool(hook.state_manager.get_state().should_compute)

    def count_executions(self, hook_name: str) -> int:
        """Module-level caches: count real executions of every module carrying ``hook_name``.
        Returns how many modules are hooked."""
        modules = hooked(self.module, hook_name)
        runs = [0]
        for _, module in modules:
            hook = _registry(module).hooks[hook_name]
            original = hook.fn_ref.original_forward

            def counted(*args, _original=original, **kwargs):
                runs[0] += 1
                return _original(*args, **kwargs)

            # diffusers declares HookFunctionReference's fields as None (assigned in its __init__, untyped)
            hook.fn_ref.original_forward = counted  # type: ignore[assignment]
            self._restores.append(functools.partial(_restore_forward, hook, original))
        start = [0]

        def snapshot():
            start[0] = runs[0]

        def decide() -> bool:
            # every hooked module ran for this call; a module reached twice counts twice
            return runs[0] - start[0] >= len(modules)

        self.before.append(snapshot)
        self.decide = decide
        return len(modules)

    def per_context(self, hooks: list[Any]) -> None:
        """Give each hook's plain ``state`` attribute one object per cache context.

        PAB and FasterCache keep a single ``hook.state``; when a pipeline runs CFG as separate
        denoiser calls (Wan, Qwen-Image, Flux with true CFG) the "uncond" call would reuse the
        "cond" call's attention output. Before each call the state of the call's context is swapped
        in; all are dropped when diffusers resets the hooks after the pipeline call."""
        states: dict[int, dict[str, object]] = {id(h): {} for h in hooks}
        self._states.extend(states.values())
        self.probe = probe = ContextProbe(on_reset=self.reset)
        HookRegistry.check_if_exists_or_initialize(self.module).register_hook(probe, PROBE)

        def swap() -> None:
            name = probe.context_name()
            for hook in hooks:
                per = states[id(hook)]
                if name not in per:
                    per[name] = type(hook.state)()
                hook.state = per[name]

        self.before.insert(0, swap)

    def reset(self) -> None:
        """Drop the per-context states (after every pipeline call, and after an aborted one)."""
        for states in self._states:
            states.clear()

    def remove(self) -> None:
        for restore in reversed(self._restores):
            restore()
        self._restores.clear()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self.probe is not None:
            HookRegistry.check_if_exists_or_initialize(self.module).remove_hook(PROBE, recurse=False)
            self.probe = None


def _has_context(module: torch.nn.Module) -> bool:
    registry = HookRegistry.check_if_exists_or_initialize(module)
    for child in (registry, *registry._get_child_registries()):
        for hook in child.hooks.values():
            for attr in vars(hook).values():
                if isinstance(attr, StateManager):
                    return attr._context is not None
    return True
