"""Registers ``omni serve-ray`` (Ray is imported only when the command runs).

The command takes ``omni serve``'s flags as they are, parsed by ``omni serve``'s own command (one
declaration of each flag, its checks and help), plus the Ray flags declared here."""

from typing import Any

from omni.sdk import hookimpl


@hookimpl
def omni_register_commands(app):
    import typer
    from omni.sdk import handle_errors
    from typer.core import TyperGroup

    @app.command("serve-ray", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    @handle_errors
    def serve_ray(
        ctx: typer.Context,
        model: str = typer.Argument(..., help="Named model (tiny-flux), hub id in the local HF cache, or local folder."),
        replicas: int = typer.Option(1, "--replicas", help="Engine replicas (each loads and optimizes the model once)."),
        min_replicas: int = typer.Option(None, "--min-replicas", help="Autoscale: fewest replicas (with --max-replicas)."),
        max_replicas: int = typer.Option(None, "--max-replicas", help="Autoscale: most replicas (with --min-replicas)."),
        target_ongoing_requests: float = typer.Option(
            2.0, "--target-ongoing-requests", help="Autoscale: requests per replica (queued + running) Ray aims at."),
        replica_cpus: float = typer.Option(1.0, "--replica-cpus", help="CPUs per replica (and its torch threads)."),
        replica_gpus: float = typer.Option(0.0, "--replica-gpus", help="GPUs per replica (0: CPU replicas)."),
        ray_address: str = typer.Option(None, "--ray-address", help="Join this Ray cluster (default: start a local one)."),
    ) -> None:
        """Serve MODEL like `omni serve` (same HTTP API and flags: --port, -O, --max-queue, --data-dir, ...) from
        a FastAPI ingress on Ray Serve in front of engine replicas. See docs/scaling.md."""
        from omni.sdk import UsageError

        from omni_plugin_ray.main import RayOptions, serve_forever

        parent = ctx.parent
        serve_cmd = parent.command.get_command(parent, "serve") \
            if parent is not None and isinstance(parent.command, TyperGroup) else None
        if serve_cmd is None:
            raise UsageError("omni serve-ray reads omni serve's flags: install omni-plugin-serve")
        flags = serve_cmd.make_context("serve-ray", [model, *ctx.args], parent=ctx.parent).params
        from omni_plugin_serve.main import ServeArgs

        values: dict[str, Any] = {("sets" if k == "set_" else k): (str(v) if k in ("config", "data_dir") and v else v)
                                  for k, v in flags.items()}
        args = ServeArgs(**values)
        code = serve_forever(args, RayOptions(
            replicas=replicas, min_replicas=min_replicas, max_replicas=max_replicas,
            target_ongoing_requests=target_ongoing_requests, replica_cpus=replica_cpus, replica_gpus=replica_gpus,
            ray_address=ray_address))
        raise typer.Exit(code)
