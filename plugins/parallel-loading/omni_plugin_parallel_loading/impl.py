"""Parallel shard loading through diffusers' own code path (``_load_shard_files_with_threadpool``).

How diffusers 0.42.1 really reads the switches (``diffusers/utils/constants.py``):

* ``HF_ENABLE_PARALLEL_LOADING`` is read **once, when diffusers is imported**, into the module constant
  ``diffusers.models.modeling_utils.HF_ENABLE_PARALLEL_LOADING``; ``from_pretrained`` reads that
  constant on every call. Setting the environment variable after the import changes nothing.
* ``HF_PARALLEL_LOADING_WORKERS`` is **not read at all**: the worker count is the constant
  ``DEFAULT_HF_PARALLEL_LOADING_WORKERS = 8`` (``min(shards, 8)`` threads), read at call time from
  ``diffusers.models.model_loading_utils``.
* Parallel loading needs ``low_cpu_mem_usage=True`` (the default with accelerate) and is turned off
  by diffusers for tensor-parallel loads and quantizers that do not support it.

So this LOAD-stage step does not touch the environment: it registers a component override for each
sharded diffusers component that loads it with ``from_pretrained`` while those two module constants
say "parallel, N workers", and puts them back right after (also when loading fails). Components that
another load-time step already loads (GGUF) or quantizes while loading (``quantization_config``) are
left to the pipeline loader and listed. transformers components (text encoders) are not covered.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, component_class, model_components, model_folder


def shard_count(folder: str) -> int | None:
    """How many safetensors files a component folder's weights span (None: no weights index or file)."""
    indexes = glob.glob(os.path.join(folder, "*.safetensors.index.json"))
    if indexes:
        with open(indexes[0], encoding="utf-8") as fh:
            return len(set(json.load(fh).get("weight_map", {}).values()))
    return 1 if glob.glob(os.path.join(folder, "*.safetensors")) else None


@contextlib.contextmanager
def parallel(workers: int) -> Iterator[None]:
    """diffusers' parallel shard loading on, with ``workers`` threads, for the duration of the block."""
    from diffusers.models import model_loading_utils, modeling_utils

    saved = modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS
    modeling_utils.HF_ENABLE_PARALLEL_LOADING = True
    model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS = workers
    try:
        yield
    finally:
        modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS = saved


def _loader(class_name: str, dtype: str, workers: int) -> Callable[[str], Any]:
    def load(folder: str) -> Any:
        import torch

        with parallel(workers):
            return component_class(class_name).from_pretrained(folder, torch_dtype=getattr(torch, dtype),
                                                               local_files_only=True, low_cpu_mem_usage=True)

    return load


def apply(ctx: RunContext, step: Step) -> Applied:
    from diffusers.models import model_loading_utils, modeling_utils

    if not hasattr(modeling_utils, "HF_ENABLE_PARALLEL_LOADING") or \
            not hasattr(model_loading_utils, "DEFAULT_HF_PARALLEL_LOADING_WORKERS"):
        raise Skip("this diffusers has no parallel shard loading (HF_ENABLE_PARALLEL_LOADING)")
    folder = model_folder(ctx)
    workers = int(step.options["num_workers"])
    planned: dict[str, dict[str, Any]] = {}
    single, left = [], {}
    for name, (library, class_name) in model_components(folder).items():
        if library != "diffusers":
            continue
        shards = shard_count(os.path.join(folder, name))
        if shards is None:
            continue
        if shards == 1:
            single.append(name)
        elif name in ctx.component_overrides:
            left[name] = "loaded by another load-time optimization"
        elif ctx.load_kwargs.get("quantization_config") is not None:
            left[name] = "quantized while loading (quantization_config): left to the pipeline loader"
        else:
            planned[name] = {"class": class_name, "shards": shards, "workers": min(workers, shards)}
    if not planned:
        why = "; ".join(f"{n}: {r}" for n, r in left.items())
        raise Skip("no diffusers component of this model is sharded" + (f" ({', '.join(single)} are single files)"
                   if single else "") + (f"; {why}" if why else "") + ": parallel shard loading would do nothing")
    for name, info in planned.items():
        ctx.component_overrides[name] = _loader(info["class"], ctx.dtype, info["workers"])
    return Applied(details={"components": planned, "single_file": single, "left_to_the_pipeline": left,
                            "not_covered": "transformers components (text encoders) load as usual"})
