"""``omni bench MODEL --optimize X [--vs Y]``."""

from __future__ import annotations

from typing import Optional

import typer

from omni.cli.common import console, handle_errors, print_json, registry


@handle_errors
def bench(
    model: str = typer.Argument(..., help="Named model (medium-flux for realistic timings), folder or hub id."),
    optimize: list[str] = typer.Option(..., "--optimize", "-O", help="Optimization(s) to measure."),
    vs: list[str] = typer.Option([], "--vs", help="Compare against these optimizations instead of the baseline."),
    set_: list[str] = typer.Option([], "--set", "-s", help="KEY=VALUE for the optimized variant."),
    runs: int = typer.Option(3, "--runs", min=1, help="Measured runs per variant (baseline and optimized alternate)."),
    warmup: int = typer.Option(1, "--warmup", min=0, help="Unmeasured runs per variant before measuring (first-call costs)."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds (each run uses all)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Denoising steps (default: the model's)."),
    height: Optional[int] = typer.Option(None, "--height", min=8, help="Image height in pixels (default: the model's)."),
    width: Optional[int] = typer.Option(None, "--width", min=8, help="Image width in pixels (default: the model's)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
) -> None:
    """Interleaved, same-seed comparison: median time per step and end to end, speedup, memory, PSNR/SSIM."""
    from omni.bench import bench as run_bench
    from omni.cli.run_cmds import _split
    from omni.config import parse_set
    from omni.errors import UsageError

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
    result = run_bench(model, _split(optimize), vs=_split(vs), sets=parse_set(set_), runs=runs, warmup=warmup,
                       seeds=seed_list, device=device, registry=registry(),
                       generation={"num_inference_steps": steps, "height": height, "width": width})
    if json_out:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"omni bench {model} ({result['device']}, {runs} runs x {len(seed_list)} seeds, interleaved)")
    for col in ("variant", "applied", "first call s", "median total s", "median step ms", "computed/reused",
                "peak CUDA MiB"):
        table.add_column(col)
    for key in ("baseline", "optimized"):
        v = result[key]
        cache = "" if v["cache_computed"] is None else f"{v['cache_computed']}/{v['cache_reused']}"
        cuda = "" if v["peak_cuda_bytes"] is None else f"{v['peak_cuda_bytes'] / 2**20:.0f}"
        table.add_row(v["label"], ", ".join(v["applied"]) or "-", f"{v['first_call_s']:.3f}", f"{v['median_total_s']:.3f}",
                      "-" if v["median_step_s"] is None else f"{v['median_step_s'] * 1000:.1f}", cache, cuda)
    con = console()
    con.print(table)
    quality = "identical output" if result["identical"] else f"PSNR {result['psnr_db']} dB, SSIM {result['ssim']}"
    con.print(f"speedup: {result['speedup_total']}x end to end, {result['speedup_step']}x per step; {quality}")
    for key in ("baseline", "optimized"):
        for s in result[key]["skipped"]:
            con.print(f"[yellow]{result[key]['label']}: skipped {s}[/yellow]")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
