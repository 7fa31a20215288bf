"""``omni calibrate teacache MODEL``: fit TeaCache coefficients (registered via
``omni_register_commands``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    calibrate_app = typer.Typer(help="Fit per-model constants (TeaCache coefficients).", no_args_is_help=True)

    @calibrate_app.command("teacache")
    def teacache(
        model: str = typer.Argument(..., help="Named model, local folder or cached hub id."),
        prompts: Optional[Path] = typer.Option(None, "--prompts", help="Text file, one prompt per line."),
        steps: int = typer.Option(20, "--steps", min=3, help="Denoising steps per prompt."),
        output: Optional[Path] = typer.Option(None, "--output", "-o",
                                              help="Calibration file (default: the TeaCache store)."),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run MODEL uncached, record (probe change, output change) pairs, fit a degree-4 polynomial."""
        from omni.sdk import console, err, handle_errors, print_json

        @handle_errors
        def _go():
            from omni_plugin_teacache.calibrate import calibrate, scope

            data = calibrate(model, prompts=prompts, steps=steps, output=output)
            if json_out:
                print_json(data)
                if data["weights"] == "random":
                    err(f"warning: {scope(data)}")
                return
            con = console()
            con.print(f"family {data['family']}, probe {data['probe']}: {data['points']} points from "
                      f"{data['prompts']} prompt(s) x {data['steps']} steps")
            con.print("coefficients: " + ", ".join(f"{c:.6g}" for c in data["coefficients"]))
            con.print(f"fit R^2 {data['r2']:.3f}; probe change range {data['x_range'][0]:.4f}..{data['x_range'][1]:.4f}")
            con.print(f"wrote {data['path']}")
            con.print(scope(data), markup=False)

        _go()

    app.add_typer(calibrate_app, name="calibrate")
