"""``omni run`` and ``omni presets``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

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
        from omni.runtime.timings import format_breakdown

        con.print(escape(format_breakdown(t)))
    for cache in data["cache_hits"]:
        con.print(f"cache {cache['method']}: computed {cache['computed']}, reused {cache['reused']} "
                  f"(per step: {''.join(_step_char(s) for s in cache['steps'])}; C computed, R reused, c mixed)")
    peak = data["memory"].get("peak_rss_bytes")
    if peak:
        con.print(f"memory: peak RSS {peak / 2**20:.0f} MiB")
    for art in data["artifacts"]:
        con.print(f"wrote {art['kind']} {escape(art['path'])}")


# request fields -> the flags that set them (a FieldError names the field)
FLAGS = {"num_inference_steps": "--steps", "num_frames": "--frames", "height": "--height", "width": "--width",
         "seed": "--seed", "prompt": "--prompt", "image": "--image", "mask": "--mask", "video": "--video",
         "strength": "--strength", "task": "--task"}


@handle_errors
def run(
    model: str = typer.Argument(..., metavar="MODEL",
                                help="Named model (tiny-flux), hub id in the local HF cache, or local folder."),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p",
                                         help="The prompt (default: a demo prompt, where the pipeline takes one)."),
    image: Optional[Path] = typer.Option(None, "--image", help="Input image (image-to-image, inpaint, edit, "
                                                                "image-to-video)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Inpainting mask, the image's size (white = repaint)."),
    video_in: Optional[Path] = typer.Option(None, "--video", help="Input video (video-to-video)."),
    strength: Optional[float] = typer.Option(None, "--strength", help="How far to move from the input, in (0, 1]."),
    task: Optional[str] = typer.Option(None, "--task", help="t2i, i2i, inpaint, edit, t2v, i2v or v2v (default: "
                                                            "what the inputs imply; omni capabilities lists a "
                                                            "family's tasks)."),
    arg: list[str] = typer.Option([], "--arg", help="KEY=VALUE passed to the pipeline call as is (a "
                                                     "pipeline-specific argument, e.g. use_resolution_binning=false)."),
    optimize: list[str] = typer.Option([], "--optimize", "-O", help="Optimization name(s), repeatable or comma list."),
    set_: list[str] = typer.Option([], "--set", "-s", help="KEY=VALUE: an OmniRT or vLLM-Omni config key, or "
                                                           "optimization.option (docs/config.md)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Named preset (omni presets)."),
    strict: bool = typer.Option(False, "--strict", help="Refuse the run (before loading) if anything can't apply."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps (default: the model's)."),
    seed: int = typer.Option(0, "--seed"),
    height: Optional[int] = typer.Option(None, "--height", help="Height in pixels (default: the model's)."),
    width: Optional[int] = typer.Option(None, "--width", help="Width in pixels (default: the model's)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Video frames (video models)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="PNG for images, MP4/GIF for video."),
    report_path: Optional[str] = typer.Option(None, "--report", help="Where to write the JSON report."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output and report files."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Load weights stored as pickle (.bin/.pt); "
                                                                    "loading them runs code from the file."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16 or float16."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON; no progress bar."),
) -> None:
    """Load MODEL, apply the requested optimizations, generate, and write the output and a report.
    Every argument is checked before anything loads; an existing file is overwritten only with --force."""
    from omni.errors import FieldError, OmniError, UsageError
    from omni.loading import check_weights, local_folder
    from omni.runtime.api import prepare
    from omni.runtime.output import check_output_path, check_target, save
    from omni.runtime.request import check_generation
    from omni.sdk import engine_options

    reg = registry()
    opts = engine_options(config=str(config) if config else None, optimize=optimize, preset=preset, strict=strict,
                          sets=[*set_, *(["allow_pickle=true"] if allow_pickle else [])], device=device, dtype=dtype)
    device, dtype = opts.pop("device"), opts.pop("dtype")
    prep = prepare(model, opts.pop("config"), registry=reg, **opts)
    video = prep.family.facts.modality == "video"
    if frames is not None and not video:
        raise UsageError(f"--frames applies to video models; {prep.resolved.family} makes images")
    safe_name = Path(model.rstrip("/")).name.replace("/", "_") or "omni"
    output = output if output is not None else f"{safe_name}.{'mp4' if video else 'png'}"
    check_output_path(output, video)
    report_path = report_path if report_path is not None else str(Path(output).with_suffix("")) + ".report.json"
    check_target(output, "--output", force=force)
    check_target(report_path, "--report", force=force)
    if os.path.realpath(output) == os.path.realpath(report_path):
        raise UsageError(f"--output and --report name the same file ({output}); the report would replace the image")
    generation: dict[str, Any] = {"num_inference_steps": steps, "height": height, "width": width,
                                  "num_frames": frames}
    inputs = {"image": image, "mask": mask, "video": video_in, "strength": strength, "task": task}
    try:
        check_generation(prep, seed=seed, **{k: v for k, v in generation.items() if v is not None})
        from omni.runtime.inputs import read_inputs

        read_inputs(**{k: (str(v) if isinstance(v, Path) else v) for k, v in inputs.items() if k != "task"})
    except FieldError as exc:
        raise UsageError(f"{FLAGS.get(exc.param, exc.param)}: {str(exc).split(': ', 1)[-1]}") from None
    generation.update({k: (str(v) if isinstance(v, Path) else v) for k, v in inputs.items()})
    generation.update(_pipeline_args(arg))
    folder = prep.resolved.path or (local_folder(prep.resolved.hub_id) if prep.resolved.hub_id else None)
    if folder is not None:  # bad weights are bad input: refused now, not after torch and diffusers load
        check_weights(folder, allow_pickle=prep.config.allow_pickle)
    try:
        result = _run_with_progress(prep, prompt, seed, device, dtype, generation, show=not json_out)
    except OmniError as exc:
        report = getattr(exc, "report", None) or prep.report
        report.stopped(str(exc))
        _write_report(report, report_path, failing=True)
        raise
    _phase(f"writing {output}", show=not json_out)
    try:
        result.report.artifacts = save(result.output, output, video=video)
    except OmniError as exc:
        result.report.stopped(str(exc))
        _write_report(result.report, report_path, failing=True)
        raise
    result.report.artifacts.append({"kind": "report", "path": report_path})
    _write_report(result.report, report_path, failing=False)
    if json_out:
        print_json(result.report.to_dict())
    else:
        render_report(result.report)


def _pipeline_args(items: list[str]) -> dict:
    """``--arg KEY=VALUE`` -> pipeline keyword arguments; values read as YAML scalars (true, 3, 0.5, text)."""
    import yaml

    from omni.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--arg expects KEY=VALUE with a Python name as KEY, got {item[:80]!r}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, (dict, list)):
            raise UsageError(f"--arg {key}: a plain value is expected, not a {type(parsed).__name__}")
        out[key] = parsed
    return out


def _write_report(report, path: str, *, failing: bool) -> None:
    """Write the report. On a failing run a report that cannot be written is one more line, never a
    traceback hiding the run's own error; on a good run it is the error."""
    from omni.errors import OmniError
    from omni.runtime.output import OutputError

    try:
        report.write(path)
    except (OSError, OmniError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if not failing:
            raise OutputError(f"the run finished but its report could not be written to {path}: {reason}") from None
        err(f"the report could not be written to {path}: {reason}")
        return
    if failing:
        err(f"report with the error written to {path}")


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
