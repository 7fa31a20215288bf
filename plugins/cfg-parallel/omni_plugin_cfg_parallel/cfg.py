"""CFG parallel on torch.distributed collectives: the two ranks run the same pipeline in lockstep (same
request, same seed) and a hook around each denoiser's forward makes each rank compute one CFG branch.

* **separate calls** (Flux and Qwen-Image true CFG, Wan): the pipeline calls the denoiser twice per step,
  conditional then unconditional. Rank 0 computes the first call; rank 1 returns a placeholder at once
  and runs ahead to the second, which it computes while rank 0 is still busy with the first. At the end
  of the second call both ranks all_gather their results and rank 1 copies rank 0's into the placeholder
  the pipeline already holds. Valid because these pipelines combine the two outputs only after both calls
  (checked in diffusers 0.42: ``FluxPipeline``, ``QwenImagePipeline``, ``WanPipeline`` read the first
  output again only in the guidance formula after the second call).
* **batched** (Stable Diffusion, SDXL, SD3): one call on a batch of ``2B`` (unconditional, then
  conditional); each rank computes its half of every batched input and the halves are all_gathered.

The pattern is learned, not assumed: in the first step of every generation both ranks compute every call,
and the step's ``scheduler.step`` tells how many calls a step makes and the batch it steps. From the second
step on the calls are split only when the step made exactly two equal-shaped calls (separate) or one call on
twice the scheduler's batch (batched); a generation without CFG (``true_cfg_scale`` 1, ``guidance_scale``
<= 1) runs whole on both ranks. ``scheduler.set_timesteps`` starts a generation (every diffusers pipeline
calls it before its loop)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, denoisers, hook_snapshot, refresh_hooks

from omni_plugin_cfg_parallel.group import join

HOOK = "omni_cfg_parallel"
# pipeline class -> how it runs CFG (each checked in diffusers' source: see the module docstring)
CHECKED = {
    "FluxPipeline": "separate",
    "FluxImg2ImgPipeline": "separate",
    "FluxInpaintPipeline": "separate",
    "QwenImagePipeline": "separate",
    "WanPipeline": "separate",
    "StableDiffusionPipeline": "batched",
    "StableDiffusionImg2ImgPipeline": "batched",
    "StableDiffusionXLPipeline": "batched",
    "StableDiffusion3Pipeline": "batched",
}
LAYOUT = {"separate": "rank 0: conditional call, rank 1: unconditional call",
          "batched": "rank 0: unconditional half of the batch, rank 1: conditional half"}


@dataclass
class Lockstep:
    """What this rank knows about the running generation, shared by the hooks of all its denoisers."""

    rank: int
    mode: str
    step: int = 0
    calls: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # this step: (batch, output shape)
    split: bool = False
    out_shape: tuple[int, ...] | None = None
    pending: Any = None  # this rank's first-call tensor: its own result (rank 0) or the placeholder (rank 1)
    computed: int = 0
    left_to_peer: int = 0

    def start(self) -> None:
        self.step, self.calls, self.split, self.out_shape, self.pending = 0, [], False, None, None

    def step_done(self, stepped_batch: int | None) -> None:
        if self.step == 0:  # learn the pattern from the first step, which ran whole on both ranks
            if self.mode == "separate":
                self.split = len(self.calls) == 2 and self.calls[0] == self.calls[1]
                self.out_shape = self.calls[0][1] if self.split else None
            else:
                self.split = (len(self.calls) >= 1 and stepped_batch is not None
                              and self.calls[0][0] == 2 * stepped_batch)
        self.step += 1
        self.calls, self.pending = [], None


def _batch(value: Any) -> int | None:
    import torch

    return value.shape[0] if isinstance(value, torch.Tensor) and value.dim() > 0 else None


def _first_tensor(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    sample = getattr(output, "sample", None)
    if isinstance(sample, torch.Tensor):
        return sample
    raise TypeError(f"cfg_parallel: the denoiser returned {type(output).__name__}, not a tensor, a tuple or an "
                    "output with .sample")


def _like(output: Any, tensor: Any) -> Any:
    """``output``'s structure with ``tensor`` as its first tensor."""
    if isinstance(output, tuple):
        return (tensor, *output[1:])
    if hasattr(output, "sample") and not isinstance(output, type(tensor)):
        return type(output)(sample=tensor)
    return tensor


def _half(value: Any, batch: int, rank: int) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        if value.dim() > 0 and value.shape[0] == batch:
            half = batch // 2
            return value[rank * half:(rank + 1) * half]
        return value
    if isinstance(value, dict):
        return {k: _half(v, batch, rank) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_half(v, batch, rank) for v in value)
    return value


def _all_gather(tensor: Any) -> list[Any]:
    import torch
    import torch.distributed as dist

    tensor = tensor.contiguous()
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(out, tensor)
    return out


def _make_hook(state: Lockstep) -> Any:
    from diffusers.hooks import ModelHook

    class CfgParallelHook(ModelHook):
        lockstep = state

        def new_forward(self, module: Any, *args: Any, **kwargs: Any) -> Any:
            # diffusers declares HookFunctionReference's fields as None (assigned in its __init__, untyped)
            forward: Callable[..., Any] = self.fn_ref.original_forward  # type: ignore[assignment]
            sample = kwargs.get("hidden_states", kwargs.get("sample", args[0] if args else None))
            batch = _batch(sample)
            index = len(state.calls)
            if kwargs.get("return_dict", True) is not False:  # the checked pipelines all pass False
                index = -1
            if state.split and state.mode == "separate" and 0 <= index < 2:
                return self._separate(forward, index, sample, args, kwargs)
            if state.split and state.mode == "batched" and index == 0 and batch and batch % 2 == 0 \
                    and kwargs.get("skip_layers") is None:
                state.calls.append((batch, ()))
                state.computed += 1
                output = forward(*_half(args, batch, state.rank), **_half(kwargs, batch, state.rank))
                import torch

                return _like(output, torch.cat(_all_gather(_first_tensor(output)), dim=0))
            output = forward(*args, **kwargs)
            state.calls.append((batch or 0, tuple(_first_tensor(output).shape)))
            state.computed += 1
            return output

        def _separate(self, forward: Any, index: int, sample: Any, args: tuple, kwargs: dict) -> Any:
            import torch

            state.calls.append((_batch(sample) or 0, state.out_shape or ()))
            mine = index == state.rank
            output = forward(*args, **kwargs) if mine else None
            state.computed += int(mine)
            state.left_to_peer += int(not mine)
            if index == 0:
                if mine:
                    state.pending = _first_tensor(output)
                    return output
                assert state.out_shape is not None  # split in "separate" mode: step_done recorded it
                state.pending = torch.empty(state.out_shape, dtype=sample.dtype, device=sample.device)
                return (state.pending,)
            gathered = _all_gather(_first_tensor(output) if mine else state.pending)
            if mine:  # rank 1: the placeholder the pipeline holds from call 0 gets rank 0's result
                state.pending.copy_(gathered[0])
                return output
            return (gathered[1],)

    return CfgParallelHook()


def _wrap(step: Step, obj: Any, name: str, after: Any) -> None:
    """An instance wrapper on ``obj.<name>`` that runs ``after(*args, **kwargs)`` once it returned; undone on
    undo."""
    had = name in vars(obj)
    previous = vars(obj).get(name)
    original = getattr(obj, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        after(*args, **kwargs)
        return result

    setattr(obj, name, wrapper)

    def undo() -> None:
        if had:
            setattr(obj, name, previous)
        else:
            vars(obj).pop(name, None)

    step.on_undo(undo)


def apply(ctx: RunContext, step: Step) -> Applied:
    pipeline = type(ctx.pipe).__name__
    mode = CHECKED.get(pipeline)
    if mode is None:
        raise Skip(f"cfg_parallel knows how {pipeline} combines its CFG branches only if checked; checked: "
                   f"{', '.join(sorted(CHECKED))}")
    found = denoisers(ctx)
    scheduler = getattr(ctx.pipe, "scheduler", None)
    if scheduler is None or not hasattr(scheduler, "step") or not hasattr(scheduler, "set_timesteps"):
        raise Skip("the pipeline has no scheduler with step/set_timesteps to follow its steps")
    group = join(ctx, step, need=2)
    if group.world_size != 2:
        raise Skip(f"cfg_parallel splits two CFG branches over exactly 2 processes; this run has "
                   f"{group.world_size} (context_parallel spreads one call over more)")
    from diffusers.hooks import HookRegistry

    state = Lockstep(rank=group.rank, mode=mode)
    for _, module in found:
        restore = hook_snapshot(module)
        HookRegistry.check_if_exists_or_initialize(module).register_hook(_make_hook(state), HOOK)
        refresh_hooks(module)

        def remove(module: Any = module, restore: Any = restore) -> None:
            HookRegistry.check_if_exists_or_initialize(module).remove_hook(HOOK, recurse=False)
            refresh_hooks(module)
            restore()

        step.on_undo(remove)
    _wrap(step, scheduler, "set_timesteps", lambda *a, **k: state.start())
    _wrap(step, scheduler, "step", lambda *a, **k: state.step_done(_batch(a[0] if a else k.get("model_output"))))
    return Applied(details={**group.layout(), "mode": mode, "layout": LAYOUT[mode],
                            "denoisers": [name for name, _ in found]},
                   reset=state.start)
