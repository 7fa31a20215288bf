"""RunReport: the JSON record of a run (schema: ``omni/report.schema.json``, documented in
docs/report.md). Field names follow OmniRT's RunReport where they overlap."""

from __future__ import annotations

import json
import math
import platform
import uuid
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omni.errors import OmniError

SCHEMA_VERSION = "1.1"


@dataclass
class OptimizationResult:
    name: str
    status: str  # applied | skipped | failed
    stage: str | None = None
    reason: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    requested_by: str | None = None
    cell: str | None = None  # supported | untested | ...
    plugin: dict[str, str] | None = None


@dataclass
class RunReport:
    model: str
    family: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    load_run_id: str | None = None  # the load report this request ran on (engine requests)
    schema_version: str = SCHEMA_VERSION
    environment: dict[str, Any] = field(default_factory=dict)
    config_requested: dict[str, Any] = field(default_factory=dict)
    config_resolved: list[OptimizationResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cache_hits: list[dict[str, Any]] = field(default_factory=list)
    device_placement: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def result(self, name: str) -> OptimizationResult | None:
        return next((r for r in self.config_resolved if r.name == name), None)

    def stopped(self, error: str) -> None:
        """The run ended with ``error``: record it, and mark every step still ``planned`` (the run
        never reached it) ``skipped`` with that reason, so the report shows no step as pending."""
        self.error = error
        for res in self.config_resolved:
            if res.status == "planned":
                res.status, res.reason = "skipped", f"not applied: the run stopped first ({error})"

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict of JSON data (what ``write`` writes). Strict JSON: a NaN or infinity anywhere is an error naming where
        (``json`` would write ``NaN``, which no JSON parser but Python's reads)."""
        data = asdict(self)
        try:
            return json.loads(json.dumps(data, default=str, allow_nan=False))
        except ValueError:
            raise OmniError(f"the report holds a non-finite number at {_non_finite(data)}") from None

    def write(self, path: str) -> None:
        from omni.runtime.output import atomic_path

        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # omni run checked the place before loading
        with atomic_path(Path(path)) as tmp:
            tmp.write_text(text, encoding="utf-8")


def _non_finite(value: Any, where: str = "report") -> str | None:
    """The path of the first NaN/infinity in ``value`` (``report.timings.steps[3]``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}")
        if found:
            return found
    return None


def schema() -> dict[str, Any]:
    return json.loads(resources.files("omni").joinpath("report.schema.json").read_text())


def environment_info(device: str) -> dict[str, Any]:
    import diffusers
    import torch

    from omni.environment import device_name

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "device": device,
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_capability"] = "%d.%d" % torch.cuda.get_device_capability(0)
    return info
