"""The ``gguf`` load step: validate the file, then have the family load build the denoiser from it.

Validation runs before anything loads and turns every problem with the user's file into one
:class:`omni.errors.UsageError` line naming the file (the run stops with exit 2):

* the file is missing, empty, not GGUF, or truncated (``GGUFReader`` fails, or a tensor's data is
  shorter than its declared size);
* a tensor has a type diffusers cannot dequantize;
* its tensor names/shapes do not match the component built from its config on the meta device.
  Files with diffusers key names must match exactly; otherwise the names are run through diffusers'
  own single-file conversion for that class (on meta tensors) and the result must match.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from omni.sdk import (
    Applied,
    RunContext,
    Skip,
    Step,
    UsageError,
    component_class,
    meta_component,
    model_components,
    model_folder,
)

from omni_plugin_gguf.components import pick_component


@dataclass
class GGUFInfo:
    path: str
    file_bytes: int
    tensors: dict[str, tuple[tuple[int, ...], str]]  # name -> (logical shape, type name)
    metadata: dict[str, Any] = field(default_factory=dict)
    layout: str = "diffusers keys"
    unexpected: list[str] = field(default_factory=list)

    @property
    def qtypes(self) -> dict[str, int]:
        return dict(Counter(t for _, t in self.tensors.values()).most_common())

    @property
    def main_qtype(self) -> str:
        quantized = Counter(t for _, t in self.tensors.values() if t not in ("F32",))
        return quantized.most_common(1)[0][0] if quantized else "F32"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_gguf(path: str) -> GGUFInfo:
    """Open ``path`` with gguf.GGUFReader and check it is complete; UsageError naming the file otherwise."""
    import gguf

    if not os.path.exists(path):
        raise UsageError(f"GGUF file {path} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"GGUF file {path} is a folder, not a file")
    size = os.path.getsize(path)
    if size == 0:
        raise UsageError(f"GGUF file {path} is empty")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - gguf raises ValueError/IndexError/struct.error on damage
        raise UsageError(f"GGUF file {path} is truncated or corrupt: {_first_line(exc)}") from None
    from diffusers.quantizers.gguf.utils import SUPPORTED_GGUF_QUANT_TYPES

    loadable = set(SUPPORTED_GGUF_QUANT_TYPES) | {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    tensors: dict[str, tuple[tuple[int, ...], str]] = {}
    for t in reader.tensors:
        if t.data.nbytes != int(t.n_bytes) or t.data_offset + int(t.n_bytes) > size:
            raise UsageError(f"GGUF file {path} is truncated: tensor {t.name} has {t.data.nbytes} of its "
                             f"{int(t.n_bytes)} bytes")
        if t.tensor_type not in loadable:
            raise UsageError(f"GGUF file {path}: tensor {t.name} has type {t.tensor_type.name}, which diffusers "
                             f"cannot dequantize")
        tensors[t.name] = (tuple(int(d) for d in reversed(t.shape.tolist())), t.tensor_type.name)
    if not tensors:
        raise UsageError(f"GGUF file {path} holds no tensors")
    metadata = {}
    for key in ("general.architecture", "omni.class", "omni.component", "omni.qtype", "omni.source"):
        fld = reader.fields.get(key)
        if fld is not None and fld.types and fld.types[0] == gguf.GGUFValueType.STRING:
            metadata[key] = bytes(fld.parts[fld.data[0]]).decode("utf-8", "replace")
    return GGUFInfo(path=path, file_bytes=size, tensors=tensors, metadata=metadata)


def _example(items, n: int = 3) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def check_against_component(info: GGUFInfo, folder: str, class_name: str) -> GGUFInfo:
    """Compare the file's tensors with ``class_name`` built from ``folder``'s config (meta device)."""
    import torch

    model = meta_component(folder, class_name)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    where = f"{class_name} configured by {os.path.join(folder, 'config.json')}"
    written_for = info.metadata.get("omni.class")
    hint = f" (the file was written for {written_for} by omni convert from {info.metadata.get('omni.source')})" \
        if written_for and written_for != class_name else ""
    found = {k: shape for k, (shape, _) in info.tensors.items()}
    if set(found) != set(expected):
        from diffusers.loaders.single_file_model import (
            SINGLE_FILE_LOADABLE_CLASSES,
            _get_single_file_loadable_mapping_class,
        )

        mapping = _get_single_file_loadable_mapping_class(component_class(class_name))
        converted = None
        if mapping is not None:
            # diffusers leaves this dict of per-class dicts unannotated: mypy infers dict[str, object]
            fn = SINGLE_FILE_LOADABLE_CLASSES[mapping]["checkpoint_mapping_fn"]  # type: ignore[index]
            checkpoint = {k: torch.empty(shape, device="meta") for k, shape in found.items()}
            try:
                result = fn(config=dict(model.config), checkpoint=checkpoint)
                converted = {k: tuple(v.shape) for k, v in result.items()}
            except Exception:  # noqa: BLE001 - not an original layout diffusers knows
                converted = None
        if converted is not None and set(expected) <= set(converted):
            info.layout = "original keys (converted by diffusers)"
            info.unexpected = sorted(set(converted) - set(expected))
            found = converted
        else:
            missing = set(expected) - set(found)
            extra = set(found) - set(expected)
            parts = []
            if missing:
                parts.append(f"{len(missing)} of the model's {len(expected)} tensors are missing ({_example(missing)})")
            if extra:
                parts.append(f"{len(extra)} tensors are unknown to it ({_example(extra)})")
            raise UsageError(f"GGUF file {info.path} does not match {where}: {'; '.join(parts)}{hint}")
    wrong = {k: (found[k], expected[k]) for k in expected if tuple(found[k]) != expected[k]}
    if wrong:
        name, (got, want) = sorted(wrong.items())[0]
        raise UsageError(
            f"GGUF file {info.path} does not match {where}: {len(wrong)} tensor shape(s) differ, e.g. {name} is "
            f"{list(got)} in the file but {list(want)} in the model{hint}")
    return info


def load_gguf(ctx: RunContext, step: Step) -> Applied:
    """LOAD stage: validate the file, then register a component override that loads it (no undo:
    the weights are loaded from the file)."""
    import torch

    path = step.options.get("path")
    if not path:
        raise UsageError("gguf needs a file: --set gguf.path=FILE (or gguf_path / gguf_model); write one with "
                         "`omni convert MODEL --to gguf --output FILE`")
    path = os.path.abspath(os.path.expanduser(str(path)))
    folder = model_folder(ctx)
    component, class_name = pick_component(model_components(folder), ctx.family,
                                           step.options.get("component") or None, "gguf.component")
    from diffusers.loaders.single_file_model import _get_single_file_loadable_mapping_class

    cls = component_class(class_name)
    if _get_single_file_loadable_mapping_class(cls) is None:
        raise Skip(f"{class_name} cannot be loaded from a single file in diffusers (no from_single_file mapping)")
    if component in ctx.component_overrides:
        raise Skip(f"{component} is already loaded by another load-time optimization")
    compute = step.options.get("compute_dtype") or ctx.dtype
    if compute != ctx.dtype:
        raise UsageError(f"gguf.compute_dtype={compute} differs from this run's dtype {ctx.dtype}: diffusers' "
                         f"GGUFLinear does not cast activations, so the matmul would mix dtypes; run with "
                         f"--dtype {compute}")
    info = check_against_component(read_gguf(path), os.path.join(folder, component), class_name)
    run_dtype = ctx.dtype
    config_folder = os.path.join(folder, component)

    def load_component(passed_folder):
        from diffusers import GGUFQuantizationConfig

        return cls.from_single_file(
            path, config=passed_folder or config_folder, local_files_only=True,
            quantization_config=GGUFQuantizationConfig(compute_dtype=getattr(torch, compute)),
            torch_dtype=getattr(torch, run_dtype))

    ctx.component_overrides[component] = load_component
    details = {
        "file": path,
        "file_bytes": info.file_bytes,
        "component": component,
        "class": class_name,
        "qtypes": info.qtypes,
        "layout": info.layout,
        "compute_dtype": compute,
        "formats": {component: f"gguf:{info.main_qtype}"},
    }
    if info.unexpected:
        details["unused_tensors"] = _example(info.unexpected)
    return Applied(details=details)
