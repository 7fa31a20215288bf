"""``omni run`` and ``omni presets``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from omni.cli.common import console, err, handle_errors, print_json, registry


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _step_char(step: dict) -> str:
    if step["reused"] == 0:
        return "C"
    return "R" if step["computed"] == 0 else "c"


def render_report(report) -> None:
    from rich.markup import escape
    from rich.table import Table

    con = console()
    data = report.to_dict()
    con.print(f"[bold]{escape(data['model'])}[/bold] (family {data['family']}) run {data['run_id']}")
    if data["config_resolved"]:
        table = Table(title="optimizations")
        for col in ("optimization", "stage", "status", "reason / details"):
            table.add_column(col, overflow="fold")
        for r in data["config_resolved"]:
            style = {"applied": "green", "skipped": "yellow", "failed": "red"}.get(r["status"], "")
            detail = r["reason"] or ", ".join(f"{k}={v}" for k, v in r["details"].items())
            table.add_row(r["name"], r["stage"] or "", f"[{style}]{r['status']}[/{style}]" if style else r["status"],
                          escape(detail or ""))
        con.print(table)
    for note in data["notes"]:
        con.print(f"note: {escape(note)}")
    t = data["timings"]
    if "generate" in t:
        steps = t.get("steps") or [0]
        con.print(f"time: total {t.get('total', 0):.2f}s, load {t['stages'].get('load', 0):.2f}s, encode "
                  f"{t['encode']:.3f}s, {len(steps)} steps {t['denoise']:.3f}s "
                  f"(median {sorted(steps)[len(steps) // 2] * 1000:.1f} ms/step), decode {t['decode']:.3f}s")
    for cache in data["cache_hits"]:
        con.print(f"cache {cache['method']}: computed {cache['computed']}, reused {cache['reused']} "
                  f"(per step: {''.join(_step_char(s) for s in cache['steps'])}; C computed, R reused, c mixed)")
    peak = data["memory"].get("peak_rss_bytes")
    if peak:
        con.print(f"memory: peak RSS {peak / 2**20:.0f} MiB")
    for art in data["artifacts"]:
        con.print(f"wrote {art['kind']} {escape(art['path'])}")


@handle_errors
def run(
    model: str = typer.Argument(..., help="Named model (tiny-flux), hub id in the local HF cache, or local folder."),
    prompt: str = typer.Option("a red circle on a blue background", "--prompt", "-p"),
    optimize: list[str] = typer.Option([], "--optimize", "-O", help="Optimization name(s), repeatable or comma list."),
    set_: list[str] = typer.Option([], "--set", "-s", help="KEY=VALUE config pair (seed, vLLM-Omni or name.option)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Named preset (omni presets)."),
    strict: bool = typer.Option(False, "--strict", help="Refuse the run (before loading) if anything can't apply."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Denoising steps."),
    seed: int = typer.Option(0, "--seed"),
    height: Optional[int] = typer.Option(None, "--height", min=8),
    width: Optional[int] = typer.Option(None, "--width", min=8),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Video frames (video models)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="PNG for images, MP4/GIF for video."),
    report_path: Optional[str] = typer.Option(None, "--report", help="Where to write the JSON report."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16 or float16."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON; no progress bar."),
) -> None:
    """Load MODEL, apply the requested optimizations, generate, and write the output and a report."""
    from omni.config import load_yaml, parse_set
    from omni.errors import OmniError, UsageError
    from omni.options import parse_dtype
    from omni.runtime.api import prepare
    from omni.runtime.output import check_output_path, save

    reg = registry()
    data = load_yaml(str(config)) if config else None
    prep = prepare(model, data, optimize=_split(optimize), sets=parse_set(set_), preset=preset, strict=strict,
                   registry=reg)
    family = reg.family(prep.resolved.family).spec
    video = family.facts.modality == "video"
    if frames is not None and not video:
        raise UsageError(f"--frames applies to video models; {prep.resolved.family} makes images")
    safe_name = Path(model.rstrip("/")).name.replace("/", "_") or "omni"
    output = output or f"{safe_name}.{'mp4' if video else 'png'}"
    check_output_path(output, video)
    report_path = report_path or str(Path(output).with_suffix("")) + ".report.json"
    if dtype is not None:
        try:
            dtype = parse_dtype(dtype)
        except ValueError as exc:
            raise UsageError(f"--dtype: {exc}") from None
    if device not in (None, "cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda, not {device!r}")
    generation = {"num_inference_steps": steps, "height": height, "width": width, "num_frames": frames}
    try:
        result = _run_with_progress(prep, prompt, seed, device, dtype, generation, show=not json_out)
    except OmniError as exc:
        report = getattr(exc, "report", None) or prep.report
        report.error = str(exc)
        report.write(report_path)
        err(f"report with the error written to {report_path}")
        raise
    _phase(f"writing {output}", show=not json_out)
    result.report.artifacts = save(result.output, output, video=video)
    result.report.artifacts.append({"kind": "report", "path": report_path})
    result.report.write(report_path)
    if json_out:
        print_json(result.report.to_dict())
    else:
        render_report(result.report)


def _phase(text: str, *, show: bool) -> None:
    """One plain line per phase on stderr when it is not a terminal (a terminal gets the live bar)."""
    if show and not sys.stderr.isatty():
        err(f"omni: {text}")


def _run_with_progress(prep, prompt, seed, device, dtype, generation, show: bool):
    from omni.runtime.api import run as run_api

    run = lambda **kw: run_api(prep.resolved.ref, prompt, prepared=prep, seed=seed, device=device,  # noqa: E731
                               dtype=dtype, **generation, **kw)
    if not (show and sys.stderr.isatty()):
        def plain(event: str, data: dict) -> None:
            if event == "phase":
                total = f" ({data['total']} steps)" if data.get("total") else ""
                _phase(f"{data['phase']}{total}", show=show)

        _phase(f"loading {prep.resolved.ref}", show=show)
        return run(on_event=plain)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"loading {prep.resolved.ref}", total=None)

        def live(event: str, data: dict) -> None:
            if event == "phase":
                phase = data["phase"]
                bar.update(task, description=phase, total=data.get("total") if phase == "denoising" else None,
                           completed=0)
            elif event == "step":
                bar.update(task, description="denoising", completed=data["step"], total=data.get("total"))

        return run(on_event=live)


@handle_errors
def presets(
    model: Optional[str] = typer.Argument(None, help="Show what each preset expands to for this model (plan and skips)."),
    json_out: bool = typer.Option(False, "--json", help="Print the presets as JSON."),
) -> None:
    """List the named presets (from plugins) and, for MODEL, exactly what each expands to and what it would skip."""
    from omni.runtime.session import prepare

    reg = registry()
    rows = []
    for declared in reg.presets.values():
        spec = declared.spec
        row = {"name": spec.name, "description": spec.description, "config": dict(spec.config),
               "optimize": list(spec.optimize), "computed": spec.expand is not None,
               "plugin": declared.plugin.distribution}
        if model is not None:
            prep = prepare(model, {}, preset=spec.name, registry=reg)
            row["expands_to"] = [n for n in prep.config.notes if n.startswith(f"preset {spec.name} expanded to")]
            row["planned"] = prep.plan.names()
            row["skipped"] = [f"{s.name}: {'; '.join(s.reasons)}" for s in prep.plan.skipped]
        rows.append(row)
    if json_out:
        print_json({"presets": rows})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="presets" + (f" for {model}" if model else ""))
    for col in ("preset", "description", "config / plan"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if model is None:
            cfg = ", ".join([f"{k}={v}" for k, v in r["config"].items()] + r["optimize"]) or "computed per model"
        else:
            cfg = "plan: " + (", ".join(r["planned"]) or "nothing")
            if r["skipped"]:
                cfg += "; skipped: " + "; ".join(r["skipped"])
        table.add_row(r["name"], escape(r["description"]), escape(cfg))
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("presets")(presets)
