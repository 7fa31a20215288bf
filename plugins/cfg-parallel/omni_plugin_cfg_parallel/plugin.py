"""Declarations (no torch import) and the ``omni launch`` command."""

from omni.sdk import Needs, OptimizationSpec, Option, Stage, hookimpl, supported

STEP_CACHES = ("teacache", "first_block_cache", "taylorseer_cache", "mag_cache", "pyramid_attention_broadcast",
               "faster_cache", "cache_dit")
LOCKSTEP = ("a step cache decides per rank which denoiser calls to skip; cfg_parallel needs both ranks to make "
            "every call of a step in lockstep")


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="cfg_parallel",
        stage=Stage.PLACE,
        summary="CFG parallel: the conditional and unconditional branches on two torch.distributed ranks, "
                "results exchanged with all_gather (omni launch --nproc 2 -- run ...)",
        lossless=True,
        impl="omni_plugin_cfg_parallel.cfg:apply",
        needs=Needs(min_processes=2),
        claims={"flux": supported("2 gloo processes give the same image as 1 on shapes (true CFG): "
                                  "tests/plugins/test_plugin_cfg_parallel.py")},
        conflicts_with={**{name: LOCKSTEP for name in STEP_CACHES},
                        "context_parallel": "both spread one generation over the same ranks; use one"},
        order=200,
    )
    yield OptimizationSpec(
        name="context_parallel",
        stage=Stage.PLACE,
        summary="context parallel (Ulysses / Ring attention) through diffusers' ContextParallelConfig and "
                "enable_parallelism: each attention's sequence split over the ranks, one GPU per rank",
        lossless=False,
        tolerance_psnr=35.0,
        impl="omni_plugin_cfg_parallel.context:apply",
        options=(
            Option("ring_degree", "int", 0, "ranks in Ring attention (0: what Ulysses leaves)", min=0),
            Option("ulysses_degree", "int", 0, "ranks in Ulysses attention (0: every rank when ring is 0 too)",
                   min=0),
        ),
        needs=Needs(accelerator=True, min_devices=2, min_processes=2),
        conflicts_with={name: LOCKSTEP.replace("cfg_parallel", "context_parallel") for name in STEP_CACHES},
        order=210,
    )


@hookimpl
def omni_register_commands(app):
    import typer
    from omni.sdk import handle_errors

    @app.command("launch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    @handle_errors
    def launch(
        ctx: typer.Context,
        nproc: int = typer.Option(..., "--nproc", help="Processes (ranks) to start: 2 for cfg_parallel."),
        master_port: int = typer.Option(0, "--master-port", help="Rendezvous port on 127.0.0.1 (0: a free one)."),
    ) -> None:
        """Run `omni run ...` as NPROC ranks of one torch.distributed run (torchrun's environment, one GPU per
        rank when there are GPUs): `omni launch --nproc 2 -- run shapes -O cfg_parallel`. Only rank 0
        writes the output and the report and prints; the other ranks' output is shown if they fail."""
        from omni_plugin_cfg_parallel.launch import launch as run_ranks

        raise typer.Exit(run_ranks(list(ctx.args), nproc=nproc, master_port=master_port))
