"""Registers ``omni serve`` (no web library is imported until the command runs)."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import hookimpl


@hookimpl
def omni_register_commands(app):
    import typer
    from omni.sdk import handle_errors

    @app.command("serve")
    @handle_errors
    def serve(
        model: str = typer.Argument(..., help="Named model (tiny-flux), hub id in the local HF cache, or local folder."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
        port: int = typer.Option(8000, "--port", help="TCP port (0: any free port, printed at start)."),
        optimize: list[str] = typer.Option([], "--optimize", "-O", help="Optimization name(s), repeatable or comma list."),
        set_: list[str] = typer.Option([], "--set", "-s", help="KEY=VALUE config pair (vLLM-Omni key or name.option)."),
        config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
        preset: str | None = typer.Option(None, "--preset", help="Named preset (omni presets)."),
        strict: bool = typer.Option(False, "--strict", help="Refuse to start if anything in the plan can't apply."),
        device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
        dtype: str | None = typer.Option(None, "--dtype", help="float32, bfloat16 or float16."),
        max_queue: int = typer.Option(16, "--max-queue", help="Requests waiting beyond the running one; more: 429."),
        data_dir: Path | None = typer.Option(
            None, "--data-dir", help="Job database and output files (default: <omni cache dir>/serve)."),
        api_key: str | None = typer.Option(
            None, "--api-key", envvar="OMNI_API_KEY", show_envvar=True,
            help="Require 'Authorization: Bearer KEY' on /v1/* and /metrics."),
        max_size: int | None = typer.Option(None, "--max-size", help="Largest height/width a request may ask."),
        max_steps: int = typer.Option(1000, "--max-steps", help="Most denoising steps a request may ask."),
        max_n: int = typer.Option(8, "--max-n", help="Most images (n) per request."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Most video frames a request may ask."),
        max_upload: int = typer.Option(32, "--max-upload", help="Largest request body (uploaded images), MiB."),
        keep_jobs: int = typer.Option(1000, "--keep-jobs", help="Finished jobs (and their files) kept; older go."),
    ) -> None:
        """Load MODEL once and serve it over HTTP: OpenAI Images/Videos APIs, jobs with progress, metrics."""
        from omni_plugin_serve.main import ServeArgs, serve_forever

        code = serve_forever(ServeArgs(
            model=model, host=host, port=port, optimize=optimize, sets=set_, config=str(config) if config else None,
            preset=preset, strict=strict, device=device, dtype=dtype, max_queue=max_queue,
            data_dir=str(data_dir) if data_dir else None, api_key=api_key, max_size=max_size, max_steps=max_steps,
            max_n=max_n, max_frames=max_frames, max_upload=max_upload, keep_jobs=keep_jobs))
        # Everything is written (job rows, files, logs): skip the interpreter's teardown of the loaded
        # model libraries, which takes seconds on CPU and has nothing left to save.
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
