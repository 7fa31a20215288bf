"""What this machine provides, detected without importing torch (CLI start-up must stay fast).

Accelerators are detected with ``torch.cuda`` when torch is already imported (the run path), else
with ``nvidia-smi`` (CLI). ``OMNI_CUDA_CAPABILITY`` overrides detection: ``none`` for a CPU-only
view, or a comma list such as ``9.0`` / ``8.9,8.9`` (documented, used by tests and docs).
The number of processes of a torch.distributed run is ``WORLD_SIZE``, which ``torchrun`` (and
``omni launch``) set in every process they start; 1 otherwise.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from packaging.requirements import Requirement

from omni.specs import Needs


@functools.lru_cache(maxsize=None)
def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _parse_caps(text: str) -> tuple[tuple[int, int], ...]:
    caps = []
    for item in text.split(","):
        item = item.strip()
        if not item or item.lower() in ("none", "cpu"):
            continue
        major, _, minor = item.partition(".")
        caps.append((int(major), int(minor or 0)))
    return tuple(caps)


def _detect_cuda() -> tuple[tuple[tuple[int, int], ...], str]:
    override = os.environ.get("OMNI_CUDA_CAPABILITY")
    if override is not None:
        return _parse_caps(override), "OMNI_CUDA_CAPABILITY"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return tuple(torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())), "torch"
        except Exception:  # noqa: BLE001
            pass
        return (), "torch"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return (), "no nvidia-smi"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
        return _parse_caps(out.stdout.replace("\n", ",")) if out.returncode == 0 else (), "nvidia-smi"
    except (OSError, subprocess.SubprocessError, ValueError):
        return (), "nvidia-smi failed"


def device_name(device: str) -> str:
    """What a run's figures depend on, in words: the GPU's name for ``cuda``, the CPU model and the
    number of CPUs this process may use for ``cpu`` (a profile tuned on one is not valid on another)."""
    if device.split(":")[0] == "cuda":
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        smi = shutil.which("nvidia-smi")
        if smi is not None:
            try:
                out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                     text=True, timeout=10)
                if out.returncode == 0 and out.stdout.strip():
                    return out.stdout.strip().splitlines()[0]
            except (OSError, subprocess.SubprocessError):
                pass
        return "unknown CUDA device"
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    import platform

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model or platform.processor() or platform.machine()}, {cpus} CPUs"


@dataclass(frozen=True)
class Environment:
    """A snapshot of what matters for availability: CUDA devices and installed packages."""

    cuda_capabilities: tuple[tuple[int, int], ...] = ()
    source: str = "assumed"
    package_overrides: dict[str, str | None] = field(default_factory=dict)
    processes: int = 1  # processes in this torch.distributed run (WORLD_SIZE)

    @classmethod
    def detect(cls) -> Environment:
        caps, source = _detect_cuda()
        world = os.environ.get("WORLD_SIZE", "1").strip()
        return cls(cuda_capabilities=caps, source=source, processes=int(world) if world.isdigit() else 1)

    @property
    def accelerator(self) -> str | None:
        return "cuda" if self.cuda_capabilities else None

    def version(self, package: str) -> str | None:
        if package in self.package_overrides:
            return self.package_overrides[package]
        return package_version(package)

    def unmet(self, needs: Needs) -> list[str]:
        """Human reasons why ``needs`` is not met here (empty list = available)."""
        reasons = []
        for spec in needs.packages:
            req = Requirement(spec)
            have = self.version(req.name)
            if have is None:
                reasons.append(f"package {req.name} is not installed (needs {spec}; pip install '{spec}')")
            elif req.specifier and not req.specifier.contains(have, prereleases=True):
                reasons.append(f"package {req.name} {have} is installed but {spec} is needed")
        if needs.accelerator or needs.min_compute_capability:
            if not self.cuda_capabilities:
                reasons.append("needs a CUDA accelerator; none found on this host")
            elif needs.min_compute_capability:
                best = max(self.cuda_capabilities)
                if best < needs.min_compute_capability:
                    reasons.append(
                        "needs CUDA compute capability >= %d.%d; this GPU has %d.%d"
                        % (*needs.min_compute_capability, *best)
                    )
        if needs.min_devices > 1 and len(self.cuda_capabilities) < needs.min_devices:
            reasons.append(f"needs {needs.min_devices} accelerator devices; found {len(self.cuda_capabilities)}")
        if needs.min_processes > 1 and self.processes < needs.min_processes:
            reasons.append(f"needs {needs.min_processes} processes of one torch.distributed run; this one has "
                           f"{self.processes} (launch with torchrun --nproc-per-node {needs.min_processes} or "
                           f"omni launch --nproc {needs.min_processes})")
        return reasons

    def to_json(self) -> dict:
        return {
            "accelerator": self.accelerator,
            "cuda_capabilities": ["%d.%d" % c for c in self.cuda_capabilities],
            "detected_by": self.source,
            "processes": self.processes,
        }
