"""``omni verify``: prove cells by real runs on tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from omni.cli.common import console, err, handle_errors, print_json, registry


@handle_errors
def verify(
    family: Optional[str] = typer.Option(None, "--family", "-f", help="Only this family."),
    optimization: Optional[str] = typer.Option(None, "--optimization", help="Only this optimization."),
    include_untested: bool = typer.Option(
        False, "--include-untested",
        help="Also run untested cells (for authors); passes are recorded as local proof on this machine, never as a "
             "supported claim."),
    write: Optional[Path] = typer.Option(None, "--write", help="Folder to write verified-matrix.md/.json into."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON (progress still goes to stderr)."),
) -> None:
    """Run each supported, available (family, optimization) cell on the family's tiny model and check it:
    applied, finite, same shape, drift within the declared tolerance, and (caches) calls really reused."""
    from omni.environment import Environment
    from omni.errors import UsageError
    from omni.verify import Verifier, cells_to_verify, summary, to_markdown
    from omni.verify_store import record

    reg = registry()
    if family:
        family = reg.family(family).spec.name
    if optimization:
        optimization = reg.optimization(optimization).spec.name
    if device not in (None, "cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda, not {device!r}")
    cells = cells_to_verify(reg, Environment.detect(), family=family, optimization=optimization,
                            include_untested=include_untested)
    if not cells:
        what = "supported or untested" if include_untested else "supported"
        raise UsageError(f"no {what} cell matches with a tiny model (omni matrix shows the declared cells)")
    con = console()

    def progress(i: int, total: int, res) -> None:
        colour = {"pass": "green", "fail": "red"}.get(res.status, "yellow")
        if res.max_abs == 0:
            drift = " identical"
        elif res.max_abs is not None:
            drift = f" max|Δ|={res.max_abs:.2e} PSNR={res.psnr:.1f} dB"
        else:
            drift = ""
        line = (f"[{i}/{total}] {res.status:11} {res.model:14} {res.task or 'base':7} {res.optimization:28}{drift} "
                f"({res.reason})")
        if json_out:
            err(line)
        else:
            con.print(f"[{colour}]{line}[/{colour}]")

    results = Verifier(reg, device=device).verify_all(cells, on_result=progress)
    if include_untested:
        from omni.matrix import CompatMatrix
        from omni.specs import Support

        published = CompatMatrix(reg, env=None)
        untested = [r for r in results if r.status != "unavailable"
                    and published.cell(r.family, r.optimization).status is Support.UNTESTED]
        if untested:
            path = record(untested)
            err(f"local proofs recorded in {path} (omni capabilities shows them; a claim in a declaration is what "
                "makes a cell supported)")
    if write is not None:
        write.mkdir(parents=True, exist_ok=True)
        (write / "verified-matrix.md").write_text(to_markdown(results))
        (write / "verified-matrix.json").write_text(
            __import__("json").dumps([r.to_json() for r in results], indent=2) + "\n")
        err(f"wrote {write / 'verified-matrix.md'} and verified-matrix.json")
    if json_out:
        print_json({"results": [r.to_json() for r in results], "summary": summary(results)})
    else:
        con.print(summary(results))
    if any(r.status == "fail" for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
