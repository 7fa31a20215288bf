"""The verified matrix: every ``supported`` cell is proven by a real run on a tiny model.

For each (named model, optimization) pair whose cell is supported and available here, run the
model once without optimizations (baseline, cached per model) and once with the optimization,
same seed, and check: it was applied (not skipped), a cache really reused denoiser calls, the output is
finite and of the same shape,
and the drift is within the declaration's tolerance (lossless: max |Δ| <= ``LOSSLESS_ATOL``;
lossy: PSNR >= ``tolerance_psnr``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from typing import NamedTuple
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from omni.environment import Environment
from omni.runtime.tasks import TaskUnavailable
from omni.matrix import CompatMatrix
from omni.plugins import Registry
from omni.specs import Support

LOSSLESS_ATOL = 1e-4


@dataclass
class VerifyResult:
    model: str
    family: str
    optimization: str
    status: str  # pass | fail | unavailable
    reason: str
    max_abs: float | None = None
    psnr: float | None = None
    tolerance: str = ""
    seconds: float | None = None
    device: str = "cpu"
    date: str = ""
    task: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


class VerifyCell(NamedTuple):
    model: str
    optimization: str
    status: Support
    task: str = ""  # empty: the model's own pipeline; else a task run through from_pipe with synthetic inputs


def _base_task(spec: Any) -> str | None:
    """The task of a family's base pipeline (the first pipeline class), where ``task_pipelines`` names it."""
    return next((t for t, cls in spec.task_pipelines.items() if cls == spec.pipelines[0]), None) \
        if spec.pipelines else None


def family_tasks(spec: Any) -> list[str]:
    """The tasks a family runs besides its base pipeline's (the first pipeline class's task)."""
    base = _base_task(spec)
    return [t for t in spec.task_pipelines if t != base]


def cells_to_verify(registry: Registry, env: Environment | None = None, family: str | None = None,
                    optimization: str | None = None, *, include_untested: bool = False,
                    tasks: bool = True) -> list[VerifyCell]:
    """Every supported cell of a family with a tiny model (with ``include_untested``, the untested cells too:
    an author proving a cell before claiming it), for the model's own pipeline and, with ``tasks``, for each
    other task the family declares (a task-specific claim decides that task's cell)."""
    matrix = CompatMatrix(registry, env=env or Environment.detect())
    published = CompatMatrix(registry, env=None)
    wanted = {Support.SUPPORTED, Support.UNTESTED} if include_untested else {Support.SUPPORTED}
    out = []
    tiny = [d.spec for d in registry.models.values() if d.spec.size == "tiny"]
    # a tiny model of a sibling pipeline (ModelSpec.task) is verified on that task; the family's other tasks on
    # one tiny model of its first pipeline: tiny-<family> where there is one
    task_model = {m.family: m.name for m in reversed(tiny) if not m.task}
    task_model.update({m.family: m.name for m in tiny if m.name == f"tiny-{m.family}" and not m.task})
    own_model = {(m.family, m.task) for m in tiny if m.task}
    for model in tiny:
        if family and model.family != family:
            continue
        first = task_model.get(model.family) == model.name
        for opt in published.optimization_names:
            if optimization and opt != optimization:
                continue
            if published.cell(model.family, opt, model.task or None).status in wanted:
                out.append(VerifyCell(model.name, opt, matrix.cell(model.family, opt, model.task or None).status,
                                      model.task))
            for task in family_tasks(registry.family(model.family).spec) if tasks and first else ():
                if (model.family, task) in own_model:
                    continue
                if published.cell(model.family, opt, task).status in wanted:
                    out.append(VerifyCell(model.name, opt, matrix.cell(model.family, opt, task).status, task))
    return out


def synthetic_inputs(task: str, generation: dict[str, Any]) -> dict[str, Any]:
    """Deterministic inputs for a task: a smooth colour image of the generation size, a centred mask, and
    for video-to-video that image as frames."""
    h, w = int(generation.get("height") or 64), int(generation.get("width") or 64)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 * np.ones_like(x)], axis=-1)
    out: dict[str, Any] = {"task": task}
    if task in ("i2i", "inpaint", "edit", "i2v"):
        out["image"] = image
    if task == "inpaint":
        mask = np.zeros((h, w), np.float32)
        mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1.0
        out["mask"] = mask
    if task == "v2v":
        out["video"] = [image] * int(generation.get("num_frames") or 9)
    return out


def run_inputs(spec: Any, task: str, generation: dict[str, Any]) -> dict[str, Any]:
    """What a verification run of ``task`` passes besides the generation arguments: synthetic inputs for
    the task, or, on the model's own pipeline (``task`` empty), for its base task when that needs inputs
    (image-to-video); and an empty prompt when that task's pipeline takes none."""
    import inspect

    import diffusers

    from omni.runtime.tasks import NEEDS

    base = _base_task(spec)
    run_task = task or (base if base and NEEDS[base] else "")
    out = synthetic_inputs(run_task, generation) if run_task else {}
    name = spec.task_pipelines.get(run_task) or (spec.pipelines[0] if spec.pipelines else None)
    cls = getattr(diffusers, name, None) if name else None
    if cls is not None and "prompt" not in inspect.signature(cls.__call__).parameters:
        out["prompt"] = ""
    return out


class Verifier:
    def __init__(self, registry: Registry, device: str | None = None) -> None:
        self.registry = registry
        self.device = device
        self._baselines: dict[tuple[str, str, str], np.ndarray] = {}
        self._tmp: Any = None

    def _workdir(self) -> str:
        """A scratch folder for ``verify_prepare`` (removed when the verifier is garbage-collected)."""
        import tempfile

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="omni-verify-")
        return self._tmp.name

    def _run(self, model: str, optimize: list[str], options: dict[str, Any], generation: dict[str, Any]):
        from omni.runtime.api import run

        sets = {f"{optimize[0]}.{k}": v for k, v in options.items()} if optimize else {}
        return run(model, optimize=optimize, sets=sets, seed=0, registry=self.registry, device=self.device,
                   **generation)

    def verify_all(self, cells: list[VerifyCell], on_result: Any = None) -> list[VerifyResult]:
        """Verify cells in order; ``on_result(index, total, result)`` after each (progress)."""
        results = []
        for i, cell in enumerate(cells, start=1):
            res = self.verify(cell.model, cell.optimization, cell.status, task=cell.task)
            results.append(res)
            if on_result is not None:
                on_result(i, len(cells), res)
        return results

    def verify(self, model: str, optimization: str, status: Support | None = None, task: str = "") -> VerifyResult:
        spec = self.registry.optimization(optimization).spec
        model_spec = self.registry.model(model).spec
        family = model_spec.family
        tolerance = f"max|Δ| <= {LOSSLESS_ATOL:g}" if spec.lossless else f"PSNR >= {spec.tolerance_psnr:g} dB"
        today = _dt.date.today().isoformat()
        if status is not None and status not in (Support.SUPPORTED, Support.UNTESTED):
            return VerifyResult(model, family, optimization, "unavailable", f"cell is {status.value} here",
                                tolerance=tolerance, date=today, task=task)
        generation = dict(spec.verify_generation)
        key = (model, task, json.dumps(generation, sort_keys=True))
        generation.update(run_inputs(self.registry.family(family).spec, task,
                                     {**model_spec.default_generation, **generation}))
        t0 = time.perf_counter()
        try:
            if key not in self._baselines:
                self._baselines[key] = self._run(model, [], {}, generation).output
            baseline = self._baselines[key]
            overrides = dict(spec.verify_overrides)
            if spec.verify_prepare:
                from omni.behaviour import resolve

                overrides.update(resolve(spec.verify_prepare)(model, self._workdir()))
            result = self._run(model, [spec.name], overrides, generation)
        except TaskUnavailable as exc:
            return VerifyResult(model, family, spec.name, "unavailable", f"this model cannot run the task: {exc}",
                                tolerance=tolerance, date=today, task=task)
        except Exception as exc:  # noqa: BLE001 - one broken cell must not hide the others
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return VerifyResult(model, family, spec.name, "fail", f"run failed: {type(exc).__name__}: {first}",
                                tolerance=tolerance, date=today, task=task)
        seconds = time.perf_counter() - t0
        device = result.report.environment.get("device", "cpu")
        out = result.output
        applied = result.report.result(spec.name)
        common = dict(tolerance=tolerance, seconds=round(seconds, 3), device=device, date=today, task=task)
        if applied is None or applied.status != "applied":
            why = applied.reason if applied else "not in the report"
            return VerifyResult(model, family, spec.name, "fail", f"not applied: {why}", **common)
        if out.shape != baseline.shape:
            return VerifyResult(model, family, spec.name, "fail", f"shape {out.shape} != baseline {baseline.shape}",
                                **common)
        if not np.isfinite(out).all():
            return VerifyResult(model, family, spec.name, "fail", "output has non-finite values", **common)
        if spec.stage.value == "cache":
            own = [c for c in result.report.cache_hits if c["method"] == spec.name]
            if not own or sum(c["reused"] for c in own) == 0:
                return VerifyResult(model, family, spec.name, "fail",
                                    "applied but reused no denoiser call at the verification settings", **common)
        max_abs = float(np.max(np.abs(out - baseline)))
        p = psnr(out, baseline)
        ok = max_abs <= LOSSLESS_ATOL if spec.lossless else p >= float(spec.tolerance_psnr or 0.0)
        reason = "within tolerance" if ok else "drift beyond the declared tolerance"
        return VerifyResult(model, family, spec.name, "pass" if ok else "fail", reason, max_abs=max_abs,
                            psnr=None if math.isinf(p) else round(p, 2), **common)


def to_markdown(results: list[VerifyResult]) -> str:
    lines = [
        "# Verified matrix",
        "",
        "Written by `omni verify --write docs`. Every `supported` cell of the support matrix is run on the family's",
        "tiny model (same seed as an unoptimized baseline) and checked: applied, finite, same shape, drift within",
        "the declared tolerance. CI runs the same checks (`tests/verified/test_verified_matrix.py`).",
        "",
        "| model | task | optimization | result | max abs Δ | PSNR (dB) | tolerance | time (s) | device | date |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        psnr_text = "identical" if r.psnr is None and r.max_abs == 0 else ("" if r.psnr is None else f"{r.psnr:.1f}")
        lines.append(
            f"| {r.model} | {r.task or 'base'} | `{r.optimization}` | {r.status} | {'' if r.max_abs is None else f'{r.max_abs:.2e}'} "
            f"| {psnr_text} | {r.tolerance.replace('|', chr(92) + '|')} | {'' if r.seconds is None else r.seconds} | {r.device} | {r.date} |"
        )
    return "\n".join(lines) + "\n"


def summary(results: list[VerifyResult]) -> str:
    counts = {k: sum(r.status == k for r in results) for k in ("pass", "fail", "unavailable")}
    return (f"{len(results)} cell(s): {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['unavailable']} unavailable here")
