"""TeaCache as diffusers ``ModelHook``s (HookRegistry / StateManager), no monkey-patched forwards.

Head hook (block 0): computes the probe from block 0's inputs and decides, per denoiser call,
whether to run the block stack. While the accumulated rescaled probe change stays under
``rel_l1_thresh`` it skips block 0 and returns ``inputs + cached residual`` (both streams for
dual-stream blocks); every later block hook then passes its inputs through. When computing, the
head remembers the stack's inputs and the tail hook (last block) stores ``outputs - inputs``.

Rules (ali-vilab originals, with vLLM-Omni's per-context state):
* the first call of a context always computes (no previous probe / residual);
* the last denoising step computes when ``force_last`` (step count from the pipeline);
* ``interval`` forces a compute at least every N calls of a context;
* a probe shape change (new resolution) computes and resets;
* state is per cache context ("cond" / "uncond", set by pipelines via ``cache_context``; pipelines
  without it get a single "inference" context) and is reset by diffusers after every pipeline call
  (``reset_stateful_hooks``), and by :meth:`Installed.reset` after an aborted one.

The thresholds live in one :class:`Settings` object the head reads on every call, so a request can
change them without reinstalling anything.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks._helpers import TransformerBlockRegistry
from diffusers.hooks.hooks import BaseState, CacheContext, StateManager

from omni.sdk import HitFlags, hook_snapshot, refresh_hooks
from omni_plugin_teacache.probes import rel_l1

HEAD = "omni_teacache_head"
BLOCK = "omni_teacache_block"


@dataclass
class Settings:
    """The per-request options (read by the head hook on every call)."""

    threshold: float
    interval: int
    force_last: bool

    def update(self, options: dict[str, Any]) -> None:
        self.threshold = float(options["rel_l1_thresh"])
        self.interval = int(options["interval"] or 0)
        self.force_last = bool(options["force_last"])

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Settings:
        settings = cls(0.0, 0, True)
        settings.update(options)
        return settings


class TeaCacheState(BaseState):
    def __init__(self) -> None:
        self.reset()

    def reset(self, *args, **kwargs) -> None:
        self.calls = 0
        self.accumulated = 0.0
        self.since_compute = 0
        self.previous_probe: torch.Tensor | None = None
        self.should_compute = True
        self.stack_inputs: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.residuals: tuple[torch.Tensor, torch.Tensor | None] | None = None


def _pack(metadata, output_len: int | None, hidden, encoder):
    if output_len is None:
        return hidden
    out = [None] * output_len
    out[metadata.return_hidden_states_index] = hidden
    if metadata.return_encoder_hidden_states_index is not None:
        out[metadata.return_encoder_hidden_states_index] = encoder
    return tuple(out)


def output_arity(block_cls) -> int | None:
    """How many tensors a block returns (None: a single tensor), from diffusers' block registry."""
    meta = TransformerBlockRegistry.get(block_cls)
    if meta.return_encoder_hidden_states_index is None and meta.return_hidden_states_index in (None, 0):
        return None
    return max(i for i in (meta.return_hidden_states_index, meta.return_encoder_hidden_states_index) if i is not None) + 1


class _BlockHookBase(ModelHook):
    def __init__(self, state_manager: StateManager, recorder: Callable | None) -> None:
        super().__init__()
        self.state_manager = state_manager
        self.recorder = recorder
        self.metadata = None
        self.params: list[str] = []
        self.output_len: int | None = None

    def initialize_hook(self, module):
        self.metadata = TransformerBlockRegistry.get(type(module))
        self.params = list(inspect.signature(type(module).forward).parameters)[1:]
        self.output_len = output_arity(type(module))
        return module

    def _inputs(self, args, kwargs):
        named = dict(zip(self.params, args))
        named.update(kwargs)
        hidden = named[self.metadata.hidden_states_argument_name]
        encoder = named.get(self.metadata.encoder_hidden_states_argument_name)
        return named, hidden, encoder

    def _split(self, output):
        if isinstance(output, tuple):
            enc_i = self.metadata.return_encoder_hidden_states_index
            return output[self.metadata.return_hidden_states_index], (output[enc_i] if enc_i is not None else None)
        return output, None


class TeaCacheHeadHook(_BlockHookBase):
    _is_stateful = True

    def __init__(self, state_manager, probe: Callable, coefficients, settings: Settings,
                 total_steps: Callable[[], int | None], flags: HitFlags, recorder: Callable | None = None) -> None:
        super().__init__(state_manager, recorder)
        self.probe = probe
        self.poly = np.poly1d(coefficients)
        self.settings = settings
        self.total_steps = total_steps
        self.flags = flags

    @torch.compiler.disable
    def _decide(self, state: TeaCacheState, probe: torch.Tensor) -> bool:
        settings = self.settings
        total = self.total_steps()
        prev = state.previous_probe
        compute = True
        if prev is not None and prev.shape == probe.shape and state.residuals is not None:
            state.accumulated += float(self.poly(rel_l1(probe, prev)))
            last = settings.force_last and total is not None and state.calls >= total - 1
            forced = settings.interval and state.since_compute + 1 >= settings.interval
            compute = last or bool(forced) or state.accumulated >= settings.threshold
        if compute:
            state.accumulated = 0.0
            state.since_compute = 0
        else:
            state.since_compute += 1
        state.previous_probe = probe.detach()
        state.calls += 1
        self.flags.record(compute)
        return compute

    def new_forward(self, module, *args, **kwargs):
        if self.state_manager._context is None:
            self.state_manager.set_context(CacheContext(name="inference"))
        state: TeaCacheState = self.state_manager.get_state()
        named, hidden, encoder = self._inputs(args, kwargs)
        with torch.no_grad():
            probe = self.probe(module, hidden, named)
        state.should_compute = self._decide(state, probe)
        if not state.should_compute:
            res_h, res_e = state.residuals
            return _pack(self.metadata, self.output_len, hidden + res_h,
                         encoder + res_e if (encoder is not None and res_e is not None) else encoder)
        state.stack_inputs = (hidden, encoder)
        if self.recorder is not None:
            self.recorder("probe", probe)
        return self.fn_ref.original_forward(*args, **kwargs)

    def reset_state(self, module):
        self.state_manager.reset()
        return module


class TeaCacheBlockHook(_BlockHookBase):
    def __init__(self, state_manager, is_tail: bool, recorder: Callable | None = None) -> None:
        super().__init__(state_manager, recorder)
        self.is_tail = is_tail

    def new_forward(self, module, *args, **kwargs):
        state: TeaCacheState = self.state_manager.get_state()
        if state.should_compute:
            output = self.fn_ref.original_forward(*args, **kwargs)
            if self.is_tail:
                out_h, out_e = self._split(output)
                in_h, in_e = state.stack_inputs
                res_e = out_e - in_e if (out_e is not None and in_e is not None) else None
                state.residuals = ((out_h - in_h).detach(), None if res_e is None else res_e.detach())
                if self.recorder is not None:
                    self.recorder("output", out_h)
            return output
        _, hidden, encoder = self._inputs(args, kwargs)
        return _pack(self.metadata, self.output_len, hidden, encoder)


def check_blocks(blocks) -> None:
    """Raise ValueError (before any hook is installed) when a block class is unknown to diffusers."""
    if len(blocks) < 2:
        raise ValueError(f"TeaCache needs at least two blocks, found {len(blocks)}")
    for name, block in blocks:
        try:
            TransformerBlockRegistry.get(type(block))
        except ValueError:
            raise ValueError(f"block {name} ({type(block).__name__}) is not in diffusers' TransformerBlockRegistry") from None


class Installed:
    """The hooks on one denoiser: ``reset()`` drops the per-context state, ``remove()`` uninstalls."""

    def __init__(self, denoiser, blocks, *, probe, coefficients, settings: Settings,
                 total_steps: Callable[[], int | None], flags: HitFlags, recorder: Callable | None = None) -> None:
        self.denoiser = denoiser
        # diffusers annotates StateManager's state_cls as an instance (BaseState); it takes the class
        self.state_manager = StateManager(TeaCacheState)  # type: ignore[arg-type]
        self.restore = hook_snapshot(denoiser)
        self.registries = []
        try:
            head = HookRegistry.check_if_exists_or_initialize(blocks[0][1])
            self.registries.append(head)
            head.register_hook(TeaCacheHeadHook(self.state_manager, probe, coefficients, settings, total_steps, flags,
                                                recorder), HEAD)
            for i, (_, block) in enumerate(blocks[1:], start=1):
                registry = HookRegistry.check_if_exists_or_initialize(block)
                self.registries.append(registry)
                registry.register_hook(TeaCacheBlockHook(self.state_manager, is_tail=i == len(blocks) - 1,
                                                         recorder=recorder), BLOCK)
        except BaseException:
            self.remove()
            raise
        # a pipeline that already ran must pass its "cond"/"uncond" contexts to the new hooks
        refresh_hooks(denoiser)

    def reset(self) -> None:
        self.state_manager.reset()

    def remove(self) -> None:
        for registry in self.registries:
            for name in (HEAD, BLOCK):
                if name in registry.hooks:
                    registry.remove_hook(name, recurse=False)
        refresh_hooks(self.denoiser)
        self.restore()
