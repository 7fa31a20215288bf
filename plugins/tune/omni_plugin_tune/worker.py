"""The measuring process: one configuration loaded once in a process of its own, then generations on
request (``omni tune`` runs one per configuration, so each peak memory figure is that configuration's
alone — a process's peak RSS never goes down, so measuring several loads in one process would charge
each one with the peaks of those before it).

It is started from a fork server that imported torch, diffusers and omni once (``preload``), talks
to the parent over a pipe (``{"cmd": ...}`` dicts) and answers with plain dicts; the generated arrays
go back to the parent, which compares them with the unoptimized outputs. Memory: the process's peak
RSS (VmHWM, as ``omni run`` reports it) on the CPU, the peak allocated bytes of the generation on a
GPU."""

from __future__ import annotations

import os
import time
from typing import Any


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _load(job: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import omni
    from omni.sdk import OmniError, quiet_libraries

    quiet_libraries()
    if job.get("threads"):
        import torch

        torch.set_num_threads(int(job["threads"]))
    t0 = time.perf_counter()
    try:
        engine = omni.Engine(job["model"], config=job["config"], strict=job["strict"], device=job["device"],
                             dtype=job.get("dtype"), prompt_cache=False, generation=job.get("generation"))
    except OmniError as exc:
        return None, {"ok": False, "error": str(exc), "kind": type(exc).__name__}
    except Exception as exc:  # noqa: BLE001 - any failure of a candidate is a result, reported with its reason
        return None, {"ok": False, "error": _first_line(exc), "kind": type(exc).__name__}
    report = engine.load_report
    return engine, {
        "ok": True,
        "load_s": round(time.perf_counter() - t0, 3),
        "applied": [r.name for r in report.config_resolved if r.status == "applied"],
        "not_applied": [f"{r.name}: {r.status}: {r.reason}" for r in report.config_resolved if r.status != "applied"],
        "notes": list(report.notes),
    }


def _generate(engine: Any, request: dict[str, Any]) -> dict[str, Any]:
    from omni.sdk import OmniError

    try:
        result = engine.generate(request["prompt"], seed=request["seed"], options=request.get("options") or {},
                                 **request.get("fields", {}))
    except OmniError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": _first_line(exc)}
    report = result.report
    hits = [c for c in report.cache_hits if c["method"] != "text_embedding"]
    cuda = report.memory.get("cuda_peak_generate")
    return {
        "ok": True,
        "seconds": report.timings["generate"],
        "denoise_s": report.timings["denoise"],
        "computed": sum(c["computed"] for c in hits) if hits else None,
        "reused": sum(c["reused"] for c in hits) if hits else None,
        "peak_rss_bytes": report.memory.get("peak_rss_bytes"),
        "cuda_peak_allocated": cuda["allocated"] if cuda else None,
        "environment": report.environment,
        "output": result.output,
    }


def serve(conn: Any, job: dict[str, Any]) -> None:
    """The process's main loop: load ``job``, then answer ``generate`` requests until ``close``."""
    os.dup2(2, 1)  # libraries that print must not reach the parent's stdout (``--json``)
    engine, reply = _load(job)
    conn.send(reply)
    if engine is None:
        return
    try:
        while True:
            message = conn.recv()
            if message.get("cmd") != "generate":
                break
            conn.send(_generate(engine, message))
    except EOFError:
        pass
    finally:
        engine.close()
