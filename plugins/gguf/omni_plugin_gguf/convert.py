"""``omni convert MODEL --to gguf``: write a pipeline component as a GGUF file with diffusers key names.

Weights stream from the component's safetensors one tensor at a time (the header is planned from
the config on the meta device), so memory stays at about one tensor. ``nn.Linear`` weights whose
input size is a multiple of the type's block size get ``--qtype`` (``gguf.quants.quantize``);
everything else (biases, norms, convolutions, embeddings, odd-sized Linear layers) stays F32,
because diffusers only swaps ``nn.Linear`` for ``GGUFLinear``. Diffusers key names mean
``from_single_file`` loads the file without key conversion (``config=`` the component folder).
"""

from __future__ import annotations

import glob
import json
import math
import os
import tempfile
from typing import Any

from omni.sdk import (
    UsageError,
    check_component_weights,
    check_output_file,
    meta_component,
    model_components,
    model_folder,
    registry,
    resolve,
)

from omni_plugin_gguf.components import linear_weight_names, pick_component
from omni_plugin_gguf.qtypes import K_QUANT_NOTE, K_QUANTS, WRITABLE


class TensorSource:
    """Read a diffusers component's weights tensor by tensor (safetensors, sharded or not). Weights only
    in pickle form (.bin) are refused unless ``allow_pickle`` (unpickling runs code from the file);
    every file is checked before any is read (``check_component_weights``)."""

    def __init__(self, folder: str, *, allow_pickle: bool = False) -> None:
        self.folder = folder
        self._where: dict[str, Any] = {}
        self.pickled = check_component_weights(folder, allow_pickle=allow_pickle)
        index = sorted(glob.glob(os.path.join(folder, "*.safetensors.index.json")))
        files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
        if index:
            with open(index[0], encoding="utf-8") as fh:
                files = sorted({os.path.join(folder, f) for f in json.load(fh)["weight_map"].values()})
        elif len(files) > 1:  # variants (fp16) beside the main file: take the main one
            main = [f for f in files if os.path.basename(f) == "diffusion_pytorch_model.safetensors"]
            files = main or files[:1]
        if files:
            from safetensors import safe_open

            for f in files:
                handle = safe_open(f, framework="pt")
                for key in handle.keys():
                    self._where[key] = handle
            return
        if not self.pickled:
            raise UsageError(f"{folder} holds no .safetensors or .bin weights")
        import pickle

        import torch

        state: dict[str, Any] = {}
        for path in (os.path.join(folder, os.path.basename(p)) for p in self.pickled):
            try:  # weights_only: even an opted-in file may only hold tensors
                state.update(torch.load(path, map_location="cpu", weights_only=True))
            except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"{path} is not a plain tensor file ({first[:160]})") from None
        self._where = {k: state for k in state}

    @property
    def names(self) -> list[str]:
        return list(self._where)

    def get(self, name: str):
        src = self._where[name]
        return src[name] if isinstance(src, dict) else src.get_tensor(name)


def normalise_qtype(qtype: str) -> str:
    q = qtype.strip().upper()
    if q in K_QUANTS or (q.startswith(("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"))):
        raise UsageError(f"--qtype {qtype}: {K_QUANT_NOTE} Writable types: {', '.join(WRITABLE)}")
    if q not in WRITABLE:
        raise UsageError(f"--qtype {qtype!r} is not one of {', '.join(WRITABLE)}")
    return q


def convert_component(folder: str, class_name: str, qtype: str, output: str, *, arch: str = "diffusers",
                      source: str = "", component: str = "", allow_pickle: bool = False) -> dict[str, Any]:
    """Write ``folder`` (one diffusers component) to ``output`` as GGUF; returns sizes and counts."""
    import gguf
    import numpy as np
    import torch

    qtype = normalise_qtype(qtype)
    qt = gguf.GGMLQuantizationType[qtype]
    block, _ = gguf.GGML_QUANT_SIZES[qt]
    meta = meta_component(folder, class_name)
    expected = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
    linear = linear_weight_names(meta)
    tensors = TensorSource(folder, allow_pickle=allow_pickle)
    missing, extra = set(expected) - set(tensors.names), set(tensors.names) - set(expected)
    if missing or extra:
        raise UsageError(f"the weights in {folder} do not match {class_name}'s config: {len(missing)} missing, "
                         f"{len(extra)} unexpected (e.g. {sorted(missing or extra)[0]})")
    plan = []
    for name, shape in expected.items():
        quantize = name in linear and len(shape) == 2 and shape[-1] % block == 0
        plan.append((name, shape, qt if quantize else gguf.GGMLQuantizationType.F32))

    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".omni-convert-", suffix=".gguf", dir=out_dir)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch=arch)
        writer.add_uint32("general.quantization_version", gguf.GGML_QUANT_VERSION)
        if source:
            writer.add_string("general.name", source)
            writer.add_string("omni.source", source)
        writer.add_string("omni.class", class_name)
        writer.add_string("omni.component", component or os.path.basename(folder.rstrip("/")))
        writer.add_string("omni.qtype", qtype)
        for name, shape, t in plan:
            if t == gguf.GGMLQuantizationType.F32:
                writer.add_tensor_info(name, shape, np.dtype(np.float32), math.prod(shape) * 4)
            else:
                byte_shape = gguf.quant_shape_to_byte_shape(shape, t)
                writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), math.prod(byte_shape), raw_dtype=t)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, shape, t in plan:
            array = np.ascontiguousarray(tensors.get(name).to(torch.float32).numpy())
            if t == gguf.GGMLQuantizationType.F32:
                writer.write_tensor_data(array)
            else:
                data = np.ascontiguousarray(gguf.quants.quantize(array, t)).view(np.uint8)
                writer.write_tensor_data(data.reshape(gguf.quant_shape_to_byte_shape(shape, t)))
        writer.close()
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    numel = sum(math.prod(s) for s in expected.values())
    size = os.path.getsize(output)
    n_q = sum(1 for _, _, t in plan if t != gguf.GGMLQuantizationType.F32)
    return {
        "output": os.path.abspath(output), "qtype": qtype, "class": class_name, "component": component,
        "source": source, "tensors": len(plan), "quantized": n_q, "kept_f32": len(plan) - n_q,
        "quantized_params": sum(math.prod(s) for _, s, t in plan if t != gguf.GGMLQuantizationType.F32),
        "params": numel, "file_bytes": size, "fp32_bytes": numel * 4, "bf16_bytes": numel * 2,
        "ratio_vs_fp32": round(size / (numel * 4), 4), "ratio_vs_bf16": round(size / (numel * 2), 4),
        "pickle_files": tensors.pickled,
    }


def convert_model(model: str, qtype: str, output: str, *, component: str | None = None,
                  allow_pickle: bool = False) -> dict[str, Any]:
    """Resolve MODEL like every omni command and write its denoiser (or ``component``) to ``output``."""
    resolved = resolve(model)
    folder = model_folder(resolved)  # a family name is a UsageError here
    family = registry().family(resolved.family).spec
    comp, class_name = pick_component(model_components(folder), family, component, "--component")
    return convert_component(os.path.join(folder, comp), class_name, qtype, output, arch=family.name,
                             source=resolved.ref, component=comp, allow_pickle=allow_pickle)


def convert_command(model: str, *, to: str, qtype: str, output: str, component: str | None, force: bool,
                    json_out: bool, allow_pickle: bool = False) -> dict[str, Any]:
    """``omni convert``: check the arguments (the output file by ``omni run``'s rule: refused when it
    exists unless ``--force``), convert, print the sizes (or JSON)."""
    if to.strip().lower() != "gguf":
        raise UsageError(f"--to {to!r}: omni convert writes gguf only")
    qtype = normalise_qtype(qtype)
    check_output_file(output, "--output", force=force)
    result = convert_model(model, qtype, output, component=component, allow_pickle=allow_pickle)
    if json_out:
        print(json.dumps(result, indent=2))
    else:
        mib = 2 ** 20
        print(f"wrote {result['output']} ({result['file_bytes'] / mib:.2f} MiB): {result['component']} "
              f"({result['class']}) of {result['source']}, {result['quantized']} of {result['tensors']} tensors as "
              f"{qtype}, the rest F32")
        print(f"size vs fp32 {result['fp32_bytes'] / mib:.2f} MiB: x{result['ratio_vs_fp32']:.3f}; "
              f"vs bf16 {result['bf16_bytes'] / mib:.2f} MiB: x{result['ratio_vs_bf16']:.3f}")
        if result["pickle_files"]:
            print(f"read pickle weights (--allow-pickle): {', '.join(result['pickle_files'])}")
    return result
