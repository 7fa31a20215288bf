"""The step observer works from hooks on the denoiser and the scheduler, not from a pipeline callback: steps
close at ``scheduler.step`` where the loop calls it, else when the denoiser's timestep changes; the abort flag
is checked before every denoiser call."""

import threading
from types import SimpleNamespace

import pytest
import torch

from omni.runtime.context import Applied, RunContext
from omni.runtime.observe import Cancelled, StepObserver
from omni.specs import FamilyFacts, FamilySpec

FAMILY = FamilySpec(name="loop", summary="a test loop", pipelines=("LoopPipeline",),
                    facts=FamilyFacts(denoiser="dit", denoiser_components=("transformer",), modality="image",
                                      tasks=("t2i",), guidance="cfg"))


class Denoiser(torch.nn.Module):
    def forward(self, x, timestep=None):
        return x * 0.5


class Scheduler:
    def step(self, out, t, x):
        return x - out


def make_ctx(with_cache=False):
    pipe = SimpleNamespace(transformer=Denoiser(), scheduler=Scheduler(), components={})
    ctx = RunContext(model=None, family=FAMILY, env=None, pipe=pipe)
    if with_cache:  # a cache that computes the first call of a step and reuses the second
        flags: list[str] = []
        pipe.transformer.register_forward_hook(
            lambda m, a, out: flags.append("reused" if flags and flags[-1] == "computed" else "computed"))

        def read():
            out = list(flags)
            flags.clear()
            return out

        ctx.applied["fake_cache"] = Applied(stats=read)
    return ctx


def loop(ctx, steps, calls_per_step=2, use_scheduler=True):
    x = torch.ones(2)
    for i in range(steps):
        t = torch.tensor([1000.0 - i * 100])
        for _ in range(calls_per_step):  # cond + uncond, as separate calls
            out = ctx.pipe.transformer(x, timestep=t)
        x = ctx.pipe.scheduler.step(out, t, x) if use_scheduler else Scheduler.step(None, out, t, x)
    return x


@pytest.mark.parametrize("use_scheduler", [True, False])
def test_steps_are_closed_with_or_without_the_scheduler(use_scheduler):
    events = []
    ctx = make_ctx(with_cache=True)
    with StepObserver(ctx, on_event=lambda name, data: events.append((name, data))) as obs:
        loop(ctx, 3, use_scheduler=use_scheduler)
        obs.finish()
    assert obs.steps == 3 and all(t >= 0 for t in obs.step_times)
    assert [e[1]["step"] for e in events if e[0] == "step"] == [1, 2, 3]
    assert [e[1]["phase"] for e in events if e[0] == "phase"][:2] == ["encoding", "denoising"]
    rows = obs.hits["fake_cache"]
    assert [(r["computed"], r["reused"]) for r in rows] == [(1, 1)] * 3
    assert "step" not in vars(ctx.pipe.scheduler) and not ctx.pipe.transformer._forward_pre_hooks  # all removed


def test_abort_is_checked_before_every_denoiser_call():
    cancel = threading.Event()
    ctx = make_ctx()

    def on_event(name, data):
        if name == "step" and data["step"] == 2:
            cancel.set()

    with pytest.raises(Cancelled) as err:
        with StepObserver(ctx, on_event=on_event, cancel=cancel):
            loop(ctx, 5)
    assert err.value.steps == 2
    assert "step" not in vars(ctx.pipe.scheduler) and not ctx.pipe.transformer._forward_pre_hooks
