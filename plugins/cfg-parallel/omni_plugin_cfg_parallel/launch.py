"""``omni launch --nproc N -- run ...``: start N processes of ``omni run`` as the ranks of one
torch.distributed run, with the environment ``torchrun`` gives (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and, when the host has GPUs, one
visible GPU per rank (``CUDA_VISIBLE_DEVICES``).

Only rank 0 writes where the user asked and prints: the other ranks run the same request (the ranks
must run in lockstep) with their ``--output``/``--report`` in a temporary folder that is removed, and
their console output is kept and shown only when a rank fails. When one rank fails the others are stopped
(a rank waiting for a peer that is gone would wait for the collective timeout)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omni.sdk import UsageError, err

PATH_FLAGS = {"--output": ".png", "-o": ".png", "--report": ".report.json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _without_paths(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``args`` without ``--output``/``-o``/``--report`` (and their values), and the values found."""
    out, found, skip = [], {}, False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        name, eq, value = arg.partition("=")
        if name in PATH_FLAGS:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"{name} needs a value")
                value, skip = args[i + 1], True
            found["--output" if name == "-o" else name] = value
            continue
        out.append(arg)
    return out, found


def _default_suffix(args: list[str]) -> str:
    """The suffix ``omni run`` gives its output when none is named: .mp4 for video models, .png else."""
    from omni.sdk import registry, resolve

    model = next((a for a in args[1:] if not a.startswith("-")), None)
    if model is None:
        return ".png"
    family = registry().find("family", resolve(model).family)
    return ".mp4" if family is not None and family.spec.facts.modality == "video" else ".png"


def rank_args(args: list[str], rank: int, scratch: Path) -> list[str]:
    """The ``omni`` arguments of one rank: rank 0's as given, the others' with their own output paths."""
    if rank == 0:
        return list(args)
    rest, found = _without_paths(args)
    suffix = Path(found["--output"]).suffix if "--output" in found else _default_suffix(args)
    return [*rest, "--output", str(scratch / f"rank{rank}{suffix}"), "--report",
            str(scratch / f"rank{rank}.report.json"), "--force"]


def launch(args: list[str], *, nproc: int, master_port: int = 0, poll_s: float = 0.2) -> int:
    """Start the ranks, wait for them; returns rank 0's exit status (or the first failing rank's)."""
    if args[:1] == ["--"]:
        args = args[1:]
    if nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {nproc}")
    if not 0 <= master_port <= 65535:
        raise UsageError(f"--master-port must be in 0..65535, got {master_port}")
    if args[:1] != ["run"]:
        raise UsageError("omni launch starts `omni run`: omni launch --nproc 2 -- run MODEL -O cfg_parallel ...")
    gpus = _gpus()
    if gpus and len(gpus) < nproc:
        raise UsageError(f"--nproc {nproc}: this host shows {len(gpus)} GPU(s); one rank per GPU")
    port = master_port or free_port()
    scratch = Path(tempfile.mkdtemp(prefix="omni-launch-"))
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for rank in range(nproc):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                       LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[rank]
            if rank == 0:
                procs.append(subprocess.Popen([sys.executable, "-m", "omni", *rank_args(args, 0, scratch)], env=env))
                continue
            log = open(scratch / f"rank{rank}.log", "w+b")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", "omni", *rank_args(args, rank, scratch)], env=env,
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        return _wait(procs, logs, poll_s)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _wait(procs: list[subprocess.Popen], logs: list, poll_s: float) -> int:
    while True:
        codes = [proc.poll() for proc in procs]
        failed = [(rank, code) for rank, code in enumerate(codes) if code is not None and code != 0]
        if failed:
            rank, code = failed[0]
            for other, proc in enumerate(procs):
                if other != rank and proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if rank > 0:
                logs[rank - 1].seek(0)
                tail = logs[rank - 1].read().decode("utf-8", "replace").strip().splitlines()[-15:]
                err(f"omni launch: rank {rank} failed (exit {code}); its last lines:")
                for line in tail:
                    err(f"  [rank {rank}] {line}")
            else:
                err("omni launch: rank 0 failed; the other ranks were stopped")
            return code
        if all(code == 0 for code in codes):
            return 0
        time.sleep(poll_s)
