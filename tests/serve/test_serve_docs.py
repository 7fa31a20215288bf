"""docs/serving.md matches the code: every route has its section with a curl and an OpenAI-client
example, every option of ``omni serve`` and every metric is documented."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import typer
from omni_plugin_serve.app import create_app
from omni_plugin_serve.metrics import Metrics
from omni_plugin_serve.plugin import omni_register_commands

DOC = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()


def _sections() -> dict[str, str]:
    """heading -> the text up to the next heading."""
    parts = re.split(r"^(#{2,3} .*)$", DOC, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_route_has_a_section_with_curl_and_client_examples():
    app = create_app(SimpleNamespace(metrics=None))
    routes = sorted(f"{m} {r.path}" for r in app.routes for m in getattr(r, "methods", ()) if m != "HEAD")
    sections = _sections()
    health = next(body for head, body in sections.items() if head == "## Health")
    for route in routes:
        method, path = route.split()
        if path.startswith("/health/"):
            assert f"`{method} {path}`" in health, route
            body = health
        else:
            matches = [body for head, body in sections.items() if f"`{method} {path}`" in head]
            assert len(matches) == 1, f"docs/serving.md: no (or more than one) heading for {route}"
            body = matches[0]
        assert "```bash\ncurl" in body and "```python\n" in body and "client." in body, route


def test_every_option_and_metric_is_documented():
    app = typer.Typer()
    app.command("noop")(lambda: None)
    omni_register_commands(app=app)
    [serve] = [c for c in app.registered_commands if c.name == "serve"]
    import inspect

    flags = [p.default.param_decls[0] for p in inspect.signature(serve.callback).parameters.values()
             if getattr(p.default, "param_decls", None)]
    assert len(flags) > 15
    options = _sections()["## Options"]
    for flag in flags:
        assert f"`{flag}`" in options or f"`{flag}/" in options or f", `{flag}`" in options, flag
    metrics = _sections()["## `GET /metrics`"]
    engine = SimpleNamespace(queue_depth=0, running=None, ready=True)
    names = {m.name for m in Metrics(engine).registry.collect()}
    for name in names:
        suffix = "_total" if f"`{name}_total`" in metrics else ""
        assert f"`{name}{suffix}`" in metrics, name
