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
    runs: int = typer.Option(20, "--runs", min=1, help="At most this many measured pairs (one run of each variant, "
                             "same seed, order alternating); fewer once the speedup's interval is narrow enough."),
    max_time: float = typer.Option(120.0, "--max-time", min=0.0, help="Stop measuring after this many seconds "
                                   "(at least 6 pairs, or --runs if fewer, are always run)."),
    precision: float = typer.Option(0.02, "--precision", min=0.0, help="Stop once the 95% interval of the speedup "
                                    "is within this fraction of its median (0.02 = ±2%)."),
    warmup: int = typer.Option(1, "--warmup", min=0, help="Unmeasured runs per variant before measuring (first-call costs)."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds (each run uses all)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Denoising steps (default: the model's)."),
    height: Optional[int] = typer.Option(None, "--height", min=8, help="Image height in pixels (default: the model's)."),
    width: Optional[int] = typer.Option(None, "--width", min=8, help="Image width in pixels (default: the model's)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
) -> None:
    """Interleaved, same-seed comparison, each variant in its own process: speedup with its 95% interval
    (or "no measurable difference"), denoiser calls computed/reused for step caches, peak memory, PSNR/SSIM."""
    from omni.bench import bench as run_bench
    from omni.cli.common import err
    from omni.cli.run_cmds import _split
    from omni.config import parse_set
    from omni.errors import UsageError

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
    result = run_bench(model, _split(optimize), vs=_split(vs), sets=parse_set(set_), runs=runs, max_seconds=max_time,
                       precision=precision, warmup=warmup, seeds=seed_list, device=device, registry=registry(),
                       generation={"num_inference_steps": steps, "height": height, "width": width},
                       progress=lambda message: err(f"omni bench: {message}"))
    if json_out:
        print_json(result)
        return
    render(model, result)


def render(model: str, result: dict) -> None:
    """The table and the verdict lines of ``omni bench``."""
    from rich.markup import escape
    from rich.table import Table

    mib = (lambda n: "-" if n is None else f"{n / 2**20:.0f}")  # noqa: E731
    gpu = result["device"] != "cpu"
    threads = f", {result['torch_threads']} torch thread(s)" if result["device"] == "cpu" else ""
    table = Table(title=f"omni bench {escape(model)} ({result['device']}{threads}, {result['pairs']} interleaved pairs over "
                        f"{len(result['seeds'])} seed(s), each variant in its own process)")
    columns = ["variant", "applied", "setup s", "first call s", "total s min/median/max", "step ms",
               "calls computed/reused", "peak RSS MiB", "weights MiB"] + (["peak CUDA MiB"] if gpu else [])
    for col in columns:
        table.add_column(col)
    for key in ("baseline", "optimized"):
        v = result[key]
        calls = "-" if v["cache_computed"] is None else f"{v['cache_computed']}/{v['cache_reused']}"
        first = "-" if v["first_call_s"] is None else f"{v['first_call_s']:.3f}"
        row = [escape(v["label"]), escape(", ".join(v["applied"]) or "-"), f"{v['setup_s']:.2f}", first,
               f"{v['min_total_s']:.3f}/{v['median_total_s']:.3f}/{v['max_total_s']:.3f}",
               "-" if v["median_step_s"] is None else f"{v['median_step_s'] * 1000:.1f}", calls,
               mib(v["peak_rss_bytes"]), mib(v["weights_bytes"])] + ([mib(v["peak_cuda_bytes"])] if gpu else [])
        table.add_row(*row)
    con = console()
    con.print(table)
    con.print(escape(result["summary"]))
    if result["verdict"] != "changed nothing":
        con.print("quality: identical output" if result["identical"]
                  else f"quality: PSNR {result['psnr_db']} dB, SSIM {result['ssim']} (lowest over seeds, vs {escape(result['baseline']['label'])})")
    step = result["speedup_step"]
    if step is not None and result["verdict"] in ("faster", "slower", "no measurable difference"):
        iv = "" if step["low"] is None else f" [{step['low']:.3f}, {step['high']:.3f}]"
        con.print(f"per denoising step: {step['median']:.3f}x{iv}")
    o = result["optimized"]
    if o["first_call_overhead_s"]:
        con.print(f"first call: {o['first_call_overhead_s']:.3f} s beyond a warm run (compilation, lazy setup)")
    stop = result["stopping"]
    if result["stopped"] != "precise":
        con.print(f"stopped at {result['stopped']} ({stop['max_pairs']} pairs / {stop['max_seconds']:.0f} s) before the "
                  f"interval was within ±{stop['precision']:.0%}: raise --runs/--max-time for a narrower one")
    con.print(f"peak RSS: {result['rss_method']}")
    for key in ("baseline", "optimized"):
        for s in result[key]["skipped"]:
            con.print(f"[yellow]{escape(result[key]['label'])}: skipped {escape(s)}[/yellow]")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
