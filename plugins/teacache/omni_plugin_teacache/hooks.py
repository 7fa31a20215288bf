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
  (``reset_stateful_hooks``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks._helpers import TransformerBlockRegistry
from diffusers.hooks.hooks import BaseState, CacheContext, StateManager

from omni_plugin_teacache.probes import rel_l1

HEAD = "omni_teacache_head"
BLOCK = "omni_teacache_block"


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


def _named_args(forward_params: list[str], args, kwargs) -> dict:
    named = dict(zip(forward_params, args))
    named.update(kwargs)
    return named


def _pack(metadata, output_len: int | None, hidden, encoder):
    if output_len is None:
        return hidden
    out = [None] * output_len
    out[metadata.return_hidden_states_index] = hidden
    if metadata.return_encoder_hidden_states_index is not None:
        out[metadata.return_encoder_hidden_states_index] = encoder
    return tuple(out)


class _BlockHookBase(ModelHook):
    def __init__(self, state_manager: StateManager) -> None:
        super().__init__()
        self.state_manager = state_manager
        self.metadata = None
        self.params: list[str] = []

    def initialize_hook(self, module):
        self.metadata = TransformerBlockRegistry.get(type(module))
        self.params = list(inspect.signature(type(module).forward).parameters)[1:]
        return module

    def _inputs(self, args, kwargs):
        named = _named_args(self.params, args, kwargs)
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

    def __init__(self, state_manager, probe: Callable, coefficients, threshold: float, interval: int,
                 force_last: bool, total_steps: Callable[[], int | None], flags: list[str], output_len: int | None,
                 recorder: Callable | None = None) -> None:
        super().__init__(state_manager)
        self.probe = probe
        self.poly = np.poly1d(coefficients)
        self.threshold = threshold
        self.interval = interval
        self.force_last = force_last
        self.total_steps = total_steps
        self.flags = flags
        self.output_len = output_len
        self.recorder = recorder

    @torch.compiler.disable
    def _decide(self, state: TeaCacheState, probe: torch.Tensor) -> bool:
        total = self.total_steps()
        prev = state.previous_probe
        compute = True
        if prev is not None and prev.shape == probe.shape and state.residuals is not None:
            state.accumulated += float(self.poly(rel_l1(probe, prev)))
            last = self.force_last and total is not None and state.calls >= total - 1
            forced = self.interval and state.since_compute + 1 >= self.interval
            compute = last or bool(forced) or state.accumulated >= self.threshold
        if compute:
            state.accumulated = 0.0
            state.since_compute = 0
        else:
            state.since_compute += 1
        state.previous_probe = probe.detach()
        state.calls += 1
        self.flags.append("computed" if compute else "reused")
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
    def __init__(self, state_manager, is_tail: bool, output_len: int | None, recorder: Callable | None = None) -> None:
        super().__init__(state_manager)
        self.is_tail = is_tail
        self.output_len = output_len
        self.recorder = recorder

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
        return _pack(self.metadata, self.output_len_for(module), hidden, encoder)

    def output_len_for(self, module) -> int | None:
        return self.output_len


def block_list(denoiser, attrs: tuple[str, ...]) -> list[tuple[str, torch.nn.Module]]:
    from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS

    names = attrs or tuple(_ALL_TRANSFORMER_BLOCK_IDENTIFIERS)
    blocks = []
    for name in names:
        container = getattr(denoiser, name, None)
        if isinstance(container, torch.nn.ModuleList):
            blocks.extend((f"{name}.{i}", b) for i, b in enumerate(container))
    return blocks


def output_arity(block_cls) -> int | None:
    """How many tensors a block returns (None: a single tensor), from diffusers' block registry."""
    meta = TransformerBlockRegistry.get(block_cls)
    if meta.return_encoder_hidden_states_index is None and meta.return_hidden_states_index in (None, 0):
        return None
    return max(i for i in (meta.return_hidden_states_index, meta.return_encoder_hidden_states_index) if i is not None) + 1


def check_blocks(blocks) -> None:
    """Raise ValueError (before any hook is installed) when a block class is unknown to diffusers."""
    if len(blocks) < 2:
        raise ValueError(f"TeaCache needs at least two blocks, found {len(blocks)}")
    for name, block in blocks:
        try:
            TransformerBlockRegistry.get(type(block))
        except ValueError:
            raise ValueError(f"block {name} ({type(block).__name__}) is not in diffusers' TransformerBlockRegistry") from None


def install(denoiser, blocks, *, probe, coefficients, threshold, interval, force_last, total_steps, flags,
            recorder=None) -> Callable[[], None]:
    """Install the hooks; returns a function removing them."""
    state_manager = StateManager(TeaCacheState)
    installed = []
    head_name, head = blocks[0]
    registry = HookRegistry.check_if_exists_or_initialize(head)
    registry.register_hook(
        TeaCacheHeadHook(state_manager, probe, coefficients, threshold, interval, force_last, total_steps, flags,
                         output_arity(type(head)), recorder), HEAD)
    installed.append(registry)
    for i, (_, block) in enumerate(blocks[1:], start=1):
        registry = HookRegistry.check_if_exists_or_initialize(block)
        registry.register_hook(
            TeaCacheBlockHook(state_manager, is_tail=i == len(blocks) - 1, output_len=output_arity(type(block)),
                              recorder=recorder), BLOCK)
        installed.append(registry)

    # diffusers 0.42 caches each registry's child-registry list on the first cache_context and
    # does not invalidate it when hooks are added below: without this, a pipeline that already
    # ran would never pass its "cond"/"uncond" contexts to our state manager
    root = HookRegistry.check_if_exists_or_initialize(denoiser)
    root.invalidate_child_registries_cache()

    def remove() -> None:
        for reg in installed:
            for name in (HEAD, BLOCK):
                if name in reg.hooks:
                    reg.remove_hook(name, recurse=False)
        root.invalidate_child_registries_cache()

    return remove
