"""The torch.distributed process group of a parallel run: joined from the environment ``torchrun``
and ``omni launch`` give every process (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``),
gloo for CPU pipelines, NCCL for CUDA ones."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from omni.sdk import RunContext, Skip, Step

# a rank that waits longer than this for its peer (the peer failed or took another path) fails instead of hanging
TIMEOUT_S = float(os.environ.get("OMNI_DIST_TIMEOUT_S", "600"))


@dataclass(frozen=True)
class Group:
    rank: int
    world_size: int
    backend: str

    def layout(self) -> dict[str, Any]:
        return {"rank": self.rank, "world_size": self.world_size, "backend": self.backend}


def env_world_size() -> int:
    value = os.environ.get("WORLD_SIZE", "1").strip()
    return int(value) if value.isdigit() else 1


def join(ctx: RunContext, step: Step, *, need: int) -> Group:
    """The run's process group, initialized here when this process was launched as one of ``need`` or
    more; ``Skip`` with the reason otherwise (before anything changes)."""
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise Skip("this torch build has no torch.distributed")
    world = dist.get_world_size() if dist.is_initialized() else env_world_size()
    if world < need:
        raise Skip(f"needs {need} processes of one torch.distributed run; this one has {world} "
                   f"(omni launch --nproc {need} -- run ...)")
    cuda = str(ctx.device).startswith("cuda")
    if cuda and torch.cuda.device_count() > 1 and int(os.environ.get("LOCAL_RANK", "0")) > 0:
        raise Skip("several GPUs are visible to every rank, so every rank's pipeline sits on the first one; "
                   "give each rank its own GPU (omni launch does: CUDA_VISIBLE_DEVICES per rank)")
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise Skip(f"WORLD_SIZE is set but {', '.join(missing)} is not: launch with torchrun or omni launch")
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=timedelta(seconds=TIMEOUT_S))
        step.on_undo(dist.destroy_process_group)
    return Group(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))
