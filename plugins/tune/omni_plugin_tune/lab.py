"""Measuring candidates: one process per loaded configuration (forked from a server that imported
torch once), a short warm-up generation, then every (prompt, seed) timed; the outputs are compared with the
unoptimized ones on the same prompts and seeds. Candidates that differ only in per-request options
(a cache threshold) share one load. Measurements recorded in an earlier profile with the same inputs
are reused instead of measured again. A deadline (``--time-limit``) stops a measurement in the
middle: the process is killed and :class:`TimeUp` raised."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import numpy as np

from omni.sdk import psnr, ssim
from omni_plugin_tune.space import Candidate, Knob
from omni_plugin_tune.trials import Trial, mib

Progress = Callable[[str], None]
PACKAGES = ("omni-core", "torch", "diffusers", "transformers", "torchao")
WARM_UP_STEPS = 2


class TimeUp(Exception):
    """The time limit ended during or before a measurement."""


@dataclass(frozen=True)
class Inputs:
    """What the measurements depend on; a profile's measurements are reused only when all of it matches."""

    model: str
    family: str
    device: str
    device_name: str
    dtype: str | None
    steps: int | None
    size: tuple[int, int] | None  # (width, height)
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    repeats: int
    threads: int | None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.steps is not None:
            out["num_inference_steps"] = self.steps
        if self.size is not None:
            out["width"], out["height"] = self.size
        return out

    def versions(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name in PACKAGES:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = None
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = f"{self.size[0]}x{self.size[1]}" if self.size else None
        data["prompts"], data["seeds"] = list(self.prompts), list(self.seeds)
        data["versions"] = self.versions()
        return data

    def signature(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


_CONTEXT: Any = None


def _context(model: str) -> Any:
    """The fork server (one per parent process), started with ``model``'s classes preloaded."""
    global _CONTEXT
    if _CONTEXT is None:
        from multiprocessing import forkserver

        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["omni_plugin_tune.preload"])
        saved = os.environ.get("OMNI_TUNE_MODEL")
        os.environ["OMNI_TUNE_MODEL"] = model
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                os.environ.pop("OMNI_TUNE_MODEL", None)
            else:
                os.environ["OMNI_TUNE_MODEL"] = saved
    return _CONTEXT


class Proc:
    """One measuring process holding one loaded configuration."""

    def __init__(self, job: dict[str, Any]) -> None:
        from omni_plugin_tune.worker import serve

        ctx = _context(job["model"])
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, job), daemon=True)
        self.process.start()
        child.close()
        self.load_key = json.dumps(job, sort_keys=True, default=str)
        self.warm = False

    def ask(self, message: dict[str, Any] | None, deadline: float | None) -> dict[str, Any]:
        if message is not None:
            self.conn.send(message)
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready = self.conn.poll(wait)
        except (EOFError, OSError):
            ready = True
        if not ready:
            self.close()
            raise TimeUp()
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            code = self.process.exitcode
            self.close()
            return {"ok": False, "error": f"the measuring process died (exit code {code}; out of memory?)"}

    def close(self) -> None:
        try:
            self.conn.send({"cmd": "close"})
        except (OSError, ValueError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class Lab:
    """Measures candidates for one set of :class:`Inputs`."""

    def __init__(self, inputs: Inputs, knobs: dict[str, Knob], *, deadline: float | None = None,
                 progress: Progress = lambda _m: None, recorded: dict[str, Trial] | None = None,
                 adherence: Callable[[list[Any], list[str]], float] | None = None) -> None:
        self.inputs = inputs
        self.knobs = knobs
        self.deadline = deadline
        self.progress = progress
        self.recorded = dict(recorded or {})
        self.adherence = adherence
        self.trials: dict[str, Trial] = {}
        self.candidates: dict[str, Candidate] = {}  # the candidate of each trial, by key
        self.measured = 0
        self.generations = 0  # every generation this run asked for, warm-ups and side-by-side included
        self.references: list[np.ndarray] | None = None
        self.live: Proc | None = None
        self.memory_kind = "cuda_peak_allocated" if inputs.device == "cuda" else "peak_rss"
        self.environment: dict[str, Any] | None = None
        self.side_by_side: dict[str, Any] | None = None  # the interleaved timing of the finalists, once run

    # ------------------------------------------------------------------ processes
    def job(self, cand: Candidate) -> dict[str, Any]:
        i = self.inputs
        return {"model": i.model, "config": cand.config(self.knobs, per_request=False), "strict": cand.strict,
                "device": i.device, "dtype": i.dtype, "threads": i.threads, "generation": None}

    def start(self, cand: Candidate) -> tuple[Proc | None, dict[str, Any]]:
        """A process with ``cand`` loaded (the live one when it holds the same load), and its load reply."""
        job = self.job(cand)
        key = json.dumps(job, sort_keys=True, default=str)
        if self.live is not None and self.live.load_key == key:
            return self.live, {"ok": True, "load_s": None}
        self.close()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeUp()
        proc = Proc(job)
        reply = proc.ask(None, self.deadline)
        if not reply.get("ok"):
            proc.close()
            return None, reply
        self.live = proc
        return proc, reply

    def generate(self, proc: Proc, prompt: str, seed: int, options: dict[str, Any]) -> dict[str, Any]:
        self.generations += 1
        return proc.ask({"cmd": "generate", "prompt": prompt, "seed": seed, "options": options,
                         "fields": self.inputs.fields()}, self.deadline)

    def warm_up(self, proc: Proc, options: dict[str, Any]) -> dict[str, Any]:
        """One short generation (two steps) in a fresh process: first-call costs (allocations,
        ``compile``'s compilation) are paid here, outside the timed generations."""
        self.generations += 1
        prompt, seed = self.cases()[0]
        return proc.ask({"cmd": "generate", "prompt": prompt, "seed": seed, "options": options,
                         "fields": {**self.inputs.fields(), "num_inference_steps": WARM_UP_STEPS}}, self.deadline)

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
            self.live = None

    # ------------------------------------------------------------------ measuring
    def cases(self) -> list[tuple[str, int]]:
        return [(p, s) for p in self.inputs.prompts for s in self.inputs.seeds]

    def measure(self, cand: Candidate) -> Trial:
        """The trial of ``cand``: already measured in this run, recorded in the profile, or measured now."""
        key = cand.key()
        self.candidates[key] = cand
        if key in self.trials:
            return self.trials[key]
        if key in self.recorded:
            trial = self.trials[key] = self.recorded[key]
            self.progress(f"{trial.label}: recorded in the profile ({self._summary(trial)})")
            return trial
        if (cand.names or cand.extra) and self.references is None:
            self.measure_baseline()  # the unoptimized outputs every other candidate is compared with
        trial = self._run(cand)
        self.trials[key] = trial
        self.measured += 1
        self.progress(f"{trial.label}: {self._summary(trial)}")
        return trial

    def measure_baseline(self) -> Trial:
        """Measure the unoptimized model now (again, when the profile recorded it: its outputs are the
        references)."""
        key = Candidate().key()
        self.trials.pop(key, None)
        self.recorded.pop(key, None)
        return self.measure(Candidate())

    def _run(self, cand: Candidate) -> Trial:
        options = cand.request_options(self.knobs)
        trial = Trial(label=cand.label, key=cand.key(), config=cand.config(self.knobs), options=options,
                      memory_kind=self.memory_kind)
        proc, reply = self.start(cand)
        if proc is None:
            trial.status = "skipped" if reply.get("kind") == "StrictRefusal" else "failed"
            trial.reason = reply.get("error")
            return trial
        trial.load_s = reply.get("load_s")
        if reply.get("not_applied"):
            trial.reason = "; ".join(reply["not_applied"])
        outputs: list[np.ndarray] = []
        replies = []
        if not proc.warm:
            warm = self.warm_up(proc, options)
            if not warm.get("ok"):
                trial.status, trial.reason = "failed", warm.get("error")
                self.close()
                return trial
            trial.first_call_s = warm["seconds"]
            proc.warm = True
            replies.append(warm)
        for r in range(self.inputs.repeats):
            for prompt, seed in self.cases():
                out = self.generate(proc, prompt, seed, options)
                if not out.get("ok"):
                    trial.status, trial.reason = "failed", out.get("error")
                    self.close()
                    return trial
                trial.seconds.append(out["seconds"])
                replies.append(out)
                if r == 0:
                    outputs.append(np.asarray(out["output"]))
                    if out["computed"] is not None:
                        trial.computed = (trial.computed or 0) + out["computed"]
                        trial.reused = (trial.reused or 0) + out["reused"]
        self.environment = self.environment or replies[-1]["environment"]
        field = "cuda_peak_allocated" if self.memory_kind == "cuda_peak_allocated" else "peak_rss_bytes"
        trial.peak_memory_bytes = max((x[field] or 0) for x in replies) or None
        if not cand.names and not cand.extra:
            self.references = outputs
        self._quality(trial, outputs)
        return trial

    def _quality(self, trial: Trial, outputs: list[np.ndarray]) -> None:
        refs = self.references if self.references is not None else outputs
        diffs = [float(np.max(np.abs(o.astype(np.float64) - r))) for o, r in zip(outputs, refs)]
        trial.max_abs_diff = max(diffs)
        trial.identical = trial.max_abs_diff == 0.0
        trial.psnr_db = None if trial.identical else round(min(psnr(o, r) for o, r in zip(outputs, refs)), 2)
        trial.ssim = round(min(ssim(o, r) for o, r in zip(outputs, refs)), 5)
        if self.adherence is not None:
            prompts = [p for p, _ in self.cases()]
            images = [o.reshape(-1, *o.shape[-3:])[0] for o in outputs]
            trial.adherence = round(float(self.adherence(images, prompts)), 4)

    def _summary(self, t: Trial) -> str:
        if t.status != "ok":
            return f"{t.status}: {t.reason}"
        quality = "identical" if t.identical else f"PSNR {t.psnr_db} dB"
        if t.adherence is not None:
            quality += f", adherence {t.adherence:.2f}"
        reuse = f", reused {t.reused}/{(t.computed or 0) + (t.reused or 0)} calls" if t.reused is not None else ""
        return f"{t.median:.3f} s/generation, {mib(t.peak_memory_bytes)}, {quality}{reuse}"
