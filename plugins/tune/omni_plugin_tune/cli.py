"""``omni tune MODEL``: the command line (registered through ``omni_register_commands``) and the
terminal rendering of its result; progress goes to stderr, ``--json`` prints the result on stdout."""

from __future__ import annotations

from typing import Any, Optional

import typer


def _quality(row: dict[str, Any]) -> str:
    text = "identical" if row.get("identical") else (f"{row['psnr_db']} dB" if row.get("psnr_db") is not None else "?")
    if row.get("ssim") is not None and not row.get("identical"):
        text += f", SSIM {row['ssim']:.3f}"
    if row.get("adherence") is not None:
        text += f", adherence {row['adherence']:.2f}"
    return text


def _mib(n: Any) -> str:
    return "?" if n is None else f"{n / 2**20:.0f} MiB"


def render(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from omni.sdk import console

    con = console()
    base = result.get("baseline") or {}
    memory = "peak allocated" if result["device"]["kind"] == "cuda" else "peak RSS"
    table = Table(title=f"Pareto front for {result['model']} (time, memory, quality) on {result['device']['name']}")
    for col in ("configuration", "s / generation", "vs baseline", memory, "quality", "acceptable"):
        table.add_column(col, overflow="fold")
    for row in result["front"]:
        ratio = f"{base['median_s'] / row['median_s']:.2f}x" if base.get("median_s") and row["median_s"] else ""
        table.add_row(escape(row["label"]), f"{row['median_s']:.3f}", ratio, _mib(row["peak_memory_bytes"]),
                      _quality(row), "yes" if row["acceptable"] else "over budget")
    con.print(table)
    if result["comparison"]:
        side = Table(title="side by side (interleaved rounds)")
        for col in ("configuration", "median s (min-max)", "speedup vs baseline (pairs)", "verdict"):
            side.add_column(col, overflow="fold")
        for row in result["comparison"]:
            speedup = row["speedup_vs_baseline"] or {}
            side.add_row(escape(row["label"]), f"{row['median_s']:.3f} ({row['min_s']:.3f}-{row['max_s']:.3f})",
                         escape(speedup.get("text", "")), speedup.get("verdict", ""))
        con.print(side)
    for item in result["left_out"]:
        con.print(f"left out: {escape(item['optimization'])}: {escape(item['reason'])}", style="dim")
    failed = [r for r in result["rejected"] if r["status"] != "ok"]
    for row in failed:
        con.print(f"{row['status']}: {escape(row['label'])}: {escape(str(row['reason']))}", style="dim")
    trials = result["trials"]
    con.print(f"trials: {trials['measured']} measured ({trials['generations']} generations), {trials['reused']} "
              f"reused from the profile; {len(result['rejected'])} rejected; {result['elapsed_s']} s")
    for note in result["notes"]:
        con.print(f"note: {escape(note)}")
    if result["stopped"]:
        con.print(f"note: {escape(result['stopped'])}")
    chosen = result["chosen"]
    if chosen is None:
        return
    speed = chosen.get("speedup_vs_baseline")
    ratio = f"{speed['text']} vs baseline" + (f" ({speed['verdict']})" if speed.get("verdict") else "") if speed else ""
    con.print(f"[bold]chosen:[/bold] {escape(chosen['label'])}: {ratio}, {_mib(chosen['peak_memory_bytes'])} "
              f"{memory}, {_quality(chosen)}")
    con.print(f"wrote {escape(result['profile'])} (omni run {escape(result['model'])} --config "
              f"{escape(result['profile'])})")


def _ints(text: str) -> list[int]:
    from omni.sdk import UsageError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be a comma list of integers, got {text!r}") from None


def register(app: typer.Typer) -> None:
    @app.command("tune")
    def tune(
        model: str = typer.Argument(..., help="Named model, local folder or cached hub id."),
        budget_memory: Optional[str] = typer.Option(None, "--budget-memory",
                                                    help="Most memory a configuration may use: peak RSS on the CPU, "
                                                         "peak allocated on a GPU (8GiB, 800MiB)."),
        min_psnr: Optional[float] = typer.Option(None, "--min-psnr", help="Quality floor: worst output's PSNR (dB) "
                                                                          "vs the unoptimized one."),
        min_ssim: Optional[float] = typer.Option(None, "--min-ssim", help="Quality floor: worst output's SSIM."),
        quality: Optional[str] = typer.Option(None, "--quality", help="'lossless' (the default floor when none "
                                                                      "is given): every output within 1e-4."),
        min_adherence: Optional[float] = typer.Option(None, "--min-adherence",
                                                      help="Quality floor: the model's adherence checker score "
                                                           "(0..1) on the prompts."),
        steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps (default: the model's)."),
        size: Optional[str] = typer.Option(None, "--size", help="WIDTHxHEIGHT (default: the model's)."),
        prompts: Optional[str] = typer.Option(None, "--prompts", help="Text file, one prompt per line."),
        seeds: str = typer.Option("0", "--seeds", help="Comma list of seeds; every prompt runs with each."),
        repeats: int = typer.Option(1, "--repeats", help="Timed generations per prompt and seed in the search."),
        time_limit: Optional[str] = typer.Option(None, "--time-limit", help="Stop with the best so far (10m, 90s)."),
        output: Optional[str] = typer.Option(None, "--output", "-o",
                                             help="Profile to write (and to reuse measurements from; "
                                                  "default tune-MODEL.yaml)."),
        only: list[str] = typer.Option([], "--only", help="Search only these optimizations (comma list)."),
        exclude: list[str] = typer.Option([], "--exclude", help="Leave these optimizations out (comma list)."),
        include_untested: bool = typer.Option(False, "--include-untested",
                                              help="Also try optimizations whose cell is untested."),
        search: str = typer.Option("greedy", "--search", help="greedy (default) or exhaustive (every combination, "
                                                              "every knob value: for comparison)."),
        finalists: int = typer.Option(3, "--finalists", help="Configurations timed side by side at the end "
                                                             "(plus the baseline)."),
        final_pairs: int = typer.Option(6, "--final-pairs", help="Pairs per finalist in the side-by-side "
                                                                 "timing (6 give a 95 % interval; 0: skip it)."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
        dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16 or float16."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch threads in each measuring process."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON (progress stays on stderr)."),
    ) -> None:
        """Find the fastest configuration of MODEL that keeps a quality floor within a memory budget, by
        measurement; write it as a profile that omni run/serve --config accept."""
        from omni.sdk import err, handle_errors, print_json

        @handle_errors
        def go() -> None:
            from omni_plugin_tune.search import INTERRUPTED
            from omni_plugin_tune.tune import TuneArgs, run_tune

            split = lambda values: [v.strip() for item in values for v in item.split(",") if v.strip()]  # noqa: E731
            args = TuneArgs(model=model, budget_memory=budget_memory, min_psnr=min_psnr, min_ssim=min_ssim,
                            quality=quality, min_adherence=min_adherence, steps=steps, size=size, prompts=prompts,
                            seeds=_ints(seeds), repeats=repeats, time_limit=time_limit, output=output,
                            only=split(only), exclude=split(exclude), include_untested=include_untested,
                            search=search, finalists=finalists, final_pairs=final_pairs, device=device,
                            dtype=dtype, threads=threads)
            result = run_tune(args, progress=lambda message: err(f"tune: {message}"))
            if json_out:
                print_json(result)
            else:
                render(result)
            if result["stopped"] == INTERRUPTED:
                raise typer.Exit(130)
            if result["chosen"] is None:
                raise typer.Exit(1)

        go()
