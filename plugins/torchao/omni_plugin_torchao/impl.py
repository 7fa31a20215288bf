"""torchao quantization for omni (torchao >= 0.15 takes config *objects*; see README.md).

Post-load (``torchao``, ``torchao_fp8_dynamic``, ``torchao_int4_weight_only``) is two-phase so that a
failure never leaves a half-quantized pipeline: every selected ``nn.Linear`` is first quantized on a
shallow copy (sharing nothing that is written), and only when all succeeded are the new parameters
swapped into the real modules. Load-time (``torchao_load``) plans the same per-layer configs on a
meta-device copy of each component and hands diffusers a ``PipelineQuantizationConfig`` whose
``TorchAoConfig`` holds an ``FqnToConfig`` (exact layer names: diffusers' own
``modules_to_not_convert`` matches substrings, so ``transformer_blocks.0.attn.to_q`` would also
exclude ``single_transformer_blocks.0.attn.to_q``).
"""

from __future__ import annotations

import copy
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from omni.sdk import (
    Applied,
    RunContext,
    Skip,
    Step,
    UsageError,
    meta_component,
    model_components,
    model_folder,
    param_bytes,
)

DEFAULT_GROUP = {"intx4_weight_only": 32, "nf4": 64}


# --------------------------------------------------------------------------- torchao import / configs
def torchao():
    """Import torchao without its import-time warnings about CUDA-only extension libraries."""
    import importlib

    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        return importlib.import_module("torchao")
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class _Configs:
    """Builds (and shares) the torchao config object for each layer of a scheme."""

    def __init__(self, scheme: str, group_size: int = 0, granularity: str = "auto") -> None:
        torchao()
        self.scheme = scheme
        self.group = int(group_size or DEFAULT_GROUP.get(scheme, 0))
        self.granularity = granularity
        self._cache: dict[Any, Any] = {}

    def _shared(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def for_layer(self, in_features: int, out_features: int, dtype) -> tuple[Any, str | None]:
        """``(config, None)`` or ``(None, why the layer stays unquantized)``."""
        import torch
        import torchao.quantization as q

        s = self.scheme
        if s == "int8_weight_only":
            return self._shared(s, lambda: q.Int8WeightOnlyConfig(set_inductor_config=False)), None
        if s == "int8_dynamic":
            return self._shared(s, lambda: q.Int8DynamicActivationInt8WeightConfig(set_inductor_config=False)), None
        if s == "fp8_weight_only":
            return self._shared(s, lambda: q.Float8WeightOnlyConfig(set_inductor_config=False)), None
        if s == "intx4_weight_only":
            if in_features % self.group:
                return None, f"in_features {in_features} is not a multiple of group_size {self.group}"
            # torch.int4 exists at runtime, but torch's stubs (torch/_C/__init__.pyi) leave out the int1..int7 dtypes
            return self._shared(s, lambda: q.IntxWeightOnlyConfig(weight_dtype=torch.int4,  # type: ignore[attr-defined]
                                                                  granularity=q.PerGroup(self.group))), None
        if s == "nf4":
            numel = in_features * out_features
            if numel % self.group:
                return None, f"{numel} weights are not a multiple of the nf4 block size {self.group}"
            blocks = numel // self.group
            scaler = 256
            while blocks % scaler:
                scaler //= 2
            if scaler < 2:
                return None, f"{blocks} nf4 blocks cannot be grouped for double quantization"

            def make():
                from torchao.prototype._nf4tensor_api import NF4WeightOnlyConfig

                cfg = NF4WeightOnlyConfig()
                cfg.block_size, cfg.scaler_block_size = self.group, scaler
                return cfg

            return self._shared((s, scaler), make), None
        if s == "fp8_dynamic":
            if in_features % 16 or out_features % 16:
                return None, f"{out_features}x{in_features}: _scaled_mm needs both sizes to be multiples of 16"
            row = self.granularity == "row" or (self.granularity == "auto" and dtype == torch.bfloat16)
            if row and dtype != torch.bfloat16:
                raise Skip("torchao_fp8_dynamic granularity=row needs bfloat16 weights (run with --dtype bfloat16)")
            gran = q.PerRow() if row else q.PerTensor()
            return self._shared((s, row), lambda: q.Float8DynamicActivationFloat8WeightConfig(
                granularity=gran, set_inductor_config=False)), None
        if s == "int4_weight_only":
            if in_features % self.group:
                return None, f"in_features {in_features} is not a multiple of group_size {self.group}"
            return self._shared(s, lambda: q.Int4WeightOnlyConfig(
                group_size=self.group, int4_packing_format="tile_packed_to_4d", set_inductor_config=False)), None
        raise UsageError(f"unknown torchao scheme {s!r}")


@dataclass
class LayerPlan:
    configs: dict[str, Any] = field(default_factory=dict)  # Linear fqn -> torchao config
    kept: dict[str, str] = field(default_factory=dict)  # Linear fqn -> why it stays unquantized
    unmatched: list[str] = field(default_factory=list)  # ignored_layers substrings that matched nothing


def split_list(text: str) -> list[str]:
    return [s.strip() for s in str(text or "").split(",") if s.strip()]


def plan_layers(module, configs: _Configs, ignored: list[str]) -> LayerPlan:
    """Decide, per ``nn.Linear`` of ``module`` (real or on the meta device), its config or why not."""
    import torch

    plan = LayerPlan()
    hit = set()
    for fqn, mod in module.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        matched = [s for s in ignored if s in fqn]
        if matched:
            hit.update(matched)
            plan.kept[fqn] = f"ignored_layers {matched[0]!r}"
            continue
        cfg, why = configs.for_layer(mod.in_features, mod.out_features, mod.weight.dtype)
        if cfg is None:
            plan.kept[fqn] = why or "incompatible"
        else:
            plan.configs[fqn] = cfg
    plan.unmatched = [s for s in ignored if s not in hit]
    return plan


# --------------------------------------------------------------------------- components
def _names(ctx: RunContext, text: str, available, option: str) -> list[str]:
    facts = ctx.family.facts
    out: list[str] = []
    for item in split_list(text) or ["denoiser"]:
        if item == "denoiser":
            out += [n for n in facts.denoiser_components if n in available]
        elif item == "text_encoders":
            out += [n for n in facts.text_encoders if n in available]
        elif item in available:
            out.append(item)
        else:
            raise UsageError(f"{option}: the {ctx.family.name} pipeline has no torch component {item!r} "
                             f"(components: {', '.join(sorted(available))})")
    return list(dict.fromkeys(out))


def pipeline_components(ctx: RunContext, text: str, option: str) -> list[tuple[str, Any]]:
    import torch

    available = {n: m for n, m in getattr(ctx.pipe, "components", {}).items() if isinstance(m, torch.nn.Module)}
    names = _names(ctx, text, available, option)
    if not names:
        raise Skip(f"{option}={text or '(denoiser)'} selects no component present on this pipeline")
    return [(n, available[n]) for n in names]


# --------------------------------------------------------------------------- post-load
def _quantize_linear(lin, cfg, device):
    """Quantize a shallow copy of ``lin``; return the copy's parameters (``lin`` itself is untouched)."""
    from torchao.quantization import quantize_

    clone = copy.copy(lin)
    clone.__dict__ = dict(lin.__dict__)
    clone._parameters = dict(lin._parameters)
    clone._buffers = dict(lin._buffers)
    quantize_(clone, cfg, device=device)
    return clone


def _post_load(ctx: RunContext, step: Step, scheme: str, *, group_size: int = 0, granularity: str = "auto", device=None,
               check=None) -> Applied:
    import torch

    name = step.name
    comps = pipeline_components(ctx, step.options.get("components", ""), f"{name}.components")
    ignored = split_list(step.options.get("ignored_layers", ""))
    configs = _Configs(scheme, group_size, granularity)
    plans = {c: plan_layers(m, configs, ignored) for c, m in comps}
    if not any(p.configs for p in plans.values()):
        reasons = "; ".join(f"{c}: {len(p.kept)} Linear layer(s) kept ({next(iter(p.kept.values()), 'none')})"
                            for c, p in plans.items())
        raise Skip(f"no Linear layer is eligible for {scheme} ({reasons})")
    if check is not None:
        check(dict(comps), plans)
    # phase 1: quantize copies; any error leaves the pipeline untouched
    staged: dict[str, list[tuple[Any, Any]]] = {}
    for comp, module in comps:
        plan = plans[comp]
        for fqn, cfg in list(plan.configs.items()):
            lin = module.get_submodule(fqn)
            try:
                clone = _quantize_linear(lin, cfg, device)
            except Skip:
                raise
            except Exception as exc:  # noqa: BLE001
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise RuntimeError(f"{comp}.{fqn} ({scheme}): {type(exc).__name__}: {first}") from exc
            weight = clone._parameters.get("weight")
            if weight is None or type(weight) in (torch.nn.Parameter, torch.Tensor):
                plan.kept[fqn] = "torchao left it unquantized"
                del plan.configs[fqn]
                continue
            staged.setdefault(comp, []).append((lin, clone))
    if not staged:
        raise Skip(f"torchao quantized no layer with {scheme}")
    # phase 2: swap the quantized parameters in. No undo: keeping the full-precision weights to
    # restore them would keep the memory that quantization is meant to free.
    before = param_bytes(ctx.pipe)
    for comp, pairs in staged.items():
        for lin, clone in pairs:
            lin._parameters.update(clone._parameters)
            if "extra_repr" in clone.__dict__:
                lin.extra_repr = clone.__dict__["extra_repr"]
    after = param_bytes(ctx.pipe)
    names = [comp for comp, _ in comps]
    return Applied(details=_details(scheme, plans, {c: before[c] for c in names}, {c: after[c] for c in names}, ctx))


def _details(scheme, plans, before, after, ctx) -> dict[str, Any]:
    details: dict[str, Any] = {
        "scheme": scheme,
        "formats": {c: f"torchao:{scheme}" for c, p in plans.items() if p.configs},
        "layers": {c: f"{len(p.configs)} quantized, {len(p.kept)} kept" for c, p in plans.items()},
    }
    if before is not None:
        details["bytes_before"] = before
        details["bytes_after"] = after
        details["ratio"] = {c: round(after[c] / before[c], 4) for c in before if before[c]}
    kept = {f"{c}.{fqn}": why for c, p in plans.items() for fqn, why in p.kept.items()}
    if kept:
        details["kept"] = dict(list(kept.items())[:20]) | ({"...": f"{len(kept) - 20} more"} if len(kept) > 20 else {})
    # a substring matters only if it matched in none of the components
    unmatched = sorted(set.intersection(*(set(p.unmatched) for p in plans.values()))) if plans else []
    if unmatched:
        note = f"{scheme}: ignored_layers {', '.join(unmatched)} matched no Linear layer"
        details["ignored_unmatched"] = unmatched
        if note not in ctx.notes:
            ctx.notes.append(note)
    return details


def quantize(ctx: RunContext, step: Step) -> Applied:
    """``torchao``: post-load quantization with a scheme that runs on any host."""
    return _post_load(ctx, step, step.options["scheme"], group_size=int(step.options.get("group_size") or 0))


def _cuda_capability():
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_capability()


def fp8_dynamic(ctx: RunContext, step: Step) -> Applied:
    """``torchao_fp8_dynamic``: float8 weights + dynamic float8 activations (``torch._scaled_mm``)."""
    cap = _cuda_capability()
    if cap is None or cap < (8, 9):
        raise Skip("float8 W8A8 needs a CUDA GPU of compute capability >= 8.9"
                   + ("" if cap is None else f" (this one is {cap[0]}.{cap[1]})"))
    if ctx.device != "cuda":
        raise Skip(f"float8 W8A8 runs on CUDA; this run's device is {ctx.device}")
    return _post_load(ctx, step, "fp8_dynamic", granularity=step.options.get("granularity", "auto"))


def int4_weight_only(ctx: RunContext, step: Step) -> Applied:
    """``torchao_int4_weight_only``: tinygemm int4 (tile-packed) on CUDA, bf16 weights."""
    import torch

    cap = _cuda_capability()
    if cap is None or cap < (8, 0):
        raise Skip("the tinygemm int4 kernel needs a CUDA GPU of compute capability >= 8.0")
    if ctx.device != "cuda":
        raise Skip(f"the tinygemm int4 kernel runs on CUDA; this run's device is {ctx.device}")

    def check(modules, plans):
        for comp, plan in plans.items():
            for fqn in plan.configs:
                dtype = modules[comp].get_submodule(fqn).weight.dtype
                if dtype != torch.bfloat16:
                    raise Skip(f"int4 tile-packed weights need bfloat16; {comp} is {str(dtype).replace('torch.', '')}"
                               " (run with --dtype bfloat16)")

    return _post_load(ctx, step, "int4_weight_only", group_size=int(step.options["group_size"]), device="cuda",
                      check=check)


# --------------------------------------------------------------------------- load-time
def load_time(ctx: RunContext, step: Step) -> Applied:
    """``torchao_load``: put a ``PipelineQuantizationConfig`` into ``ctx.load_kwargs`` before the family load."""
    import torch
    from diffusers import PipelineQuantizationConfig, TorchAoConfig
    from torchao.quantization import FqnToConfig

    if ctx.load_kwargs.get("quantization_config") is not None:
        raise Skip("another load-time optimization already set quantization_config")
    folder = model_folder(ctx)
    available = model_components(folder)
    names = _names(ctx, step.options.get("components", ""), available, "torchao_load.components")
    if not names:
        raise Skip("torchao_load.components selects no component of this pipeline")
    scheme = step.options["scheme"]
    configs = _Configs(scheme, int(step.options.get("group_size") or 0))
    ignored = split_list(step.options.get("ignored_layers", ""))
    mapping, plans, full = {}, {}, {}
    dtype = getattr(torch, ctx.dtype)
    for comp in names:
        library, class_name = available[comp]
        if library != "diffusers":
            raise UsageError(f"torchao_load.components: {comp} is a {library} {class_name}; torchao_load quantizes "
                             f"diffusers components only (quantize it after loading with torchao.components={comp})")
        if comp in ctx.component_overrides:
            raise Skip(f"{comp} is loaded by another load-time optimization")
        meta = meta_component(os.path.join(folder, comp), class_name)
        plan = plan_layers(meta, configs, ignored)
        plans[comp] = plan
        full[comp] = sum(p.numel() for p in meta.parameters()) * torch.empty((), dtype=dtype).element_size()
        if plan.configs:
            mapping[comp] = TorchAoConfig(FqnToConfig(OrderedDict(plan.configs)))
    if not mapping:
        raise Skip(f"no Linear layer of {', '.join(names)} is eligible for {scheme}")
    ctx.load_kwargs["quantization_config"] = PipelineQuantizationConfig(quant_mapping=mapping)
    details = _details(scheme, plans, None, None, ctx)
    details["bytes_unquantized"] = {c: full[c] for c in mapping}
    details["note"] = "quantized while loading: memory.param_bytes 'after' is the quantized size"
    return Applied(details=details)  # no undo: the weights are loaded quantized
