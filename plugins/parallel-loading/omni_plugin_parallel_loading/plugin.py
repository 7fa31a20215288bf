"""Declarations only (no torch import).

No family claims ``supported``: ``omni verify`` runs the tiny models, whose components are single
files, where this step skips (it would do nothing). It is proven on sharded copies of tiny-flux and
medium-flux by tests/plugins/test_plugin_parallel_loading.py and benchmarks/loading.py.
"""

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="parallel_loading",
        stage=Stage.LOAD,
        summary="read each sharded diffusers component's safetensors shards in parallel threads (diffusers' own "
                "parallel shard loading); skips a model whose components are single files",
        lossless=True,
        impl="omni_plugin_parallel_loading.impl:apply",
        options=(Option("num_workers", "int", 8, "threads reading the shards of one component (at most one per "
                        "shard; diffusers' default is 8)", min=1, max=64),),
        config_keys=(ConfigKey("enable_parallel_loading", enables=True),
                     ConfigKey("parallel_loading_workers", option="num_workers")),
        needs=Needs(packages=("diffusers>=0.35",)),
        order=90,  # after the load-time steps that replace a component (gguf) or set its quantization
    )
