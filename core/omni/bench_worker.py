"""One ``omni bench`` variant in a process of its own.

Each variant is loaded and run in its own (spawned) process, so that its peak RSS is its own: the
peak resident set of a process never goes down, and in one process holding both variants the
second variant's peak would include the first. The parent drives the two processes in turn (one
generation at a time, so they never compete for the CPU) and compares their outputs.

Protocol over a pipe: the worker imports torch/diffusers and the plugins, says ``ready``; on
``load`` it loads and optimizes the variant (timed: ``setup_s``) and answers ``loaded``; on
``run`` it generates once and answers ``ran`` with the timings, cache counts and (when asked) the
output; on ``stop`` it answers with its peak RSS and exits. Errors travel back as ``error``
(an :class:`~omni.errors.OmniError`, re-raised in the parent with the same class) or ``crash``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
from typing import Any

from omni.errors import OmniError


def serve(conn: Any, job: dict[str, Any]) -> None:
    """Worker process main loop (the target of the spawned process)."""
    try:
        _serve(conn, job)
    except KeyboardInterrupt:
        pass
    except OmniError as exc:
        _send(conn, ("error", type(exc).__module__, type(exc).__qualname__, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _send(conn, ("crash", f"{type(exc).__name__}: {first}".rstrip(": ")))


def _send(conn: Any, message: tuple) -> None:
    try:
        conn.send(message)
    except (OSError, EOFError):  # the parent is gone
        pass


def _serve(conn: Any, job: dict[str, Any]) -> None:
    import diffusers  # noqa: F401 - imported before "ready": import time is not part of setup_s
    import torch

    from omni.loading import quiet_libraries
    from omni.plugins import Selection, load_registry, set_registry
    from omni.runtime import measure
    from omni.runtime.generate import generate
    from omni.runtime.report import RunReport
    from omni.runtime.session import Session, prepare

    quiet_libraries()
    registry = load_registry(selection=Selection(deny=frozenset(job["deny"])))
    set_registry(registry)
    conn.send(("ready",))
    try:
        if conn.recv()[0] != "load":
            return
    except EOFError:
        return
    t0 = time.perf_counter()
    prep = prepare(job["model"], {}, optimize=job["optimize"], sets=job["sets"], registry=registry)
    gen = {**prep.generation_defaults(), **{k: v for k, v in job["generation"].items() if v is not None}}
    ctx = Session.load(prep, device=job["device"], generation=gen).ctx
    setup_s = time.perf_counter() - t0
    resolved = prep.report.config_resolved
    weights = prep.report.memory.get("param_bytes", {})
    conn.send(("loaded", {
        "setup_s": setup_s, "device": ctx.device, "generation": gen, "torch_threads": torch.get_num_threads(),
        "applied": [r.name for r in resolved if r.status == "applied"],
        "skipped": [f"{r.name}: {r.reason}" for r in resolved if r.status != "applied"],
        "weights_bytes": sum(v.get("after") or 0 for v in weights.values()) or None,
    }))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent closed the pipe
            return
        if message[0] == "stop":
            conn.send(("stopped", {"peak_rss_bytes": measure.peak_rss_bytes()}))
            return
        _, seed, want_output = message
        report = RunReport(model=job["model"], family=prep.resolved.family)
        measure.reset_cuda_peak()
        t0 = time.perf_counter()
        out = generate(ctx, report, job["prompt"], gen, seed=seed)
        total = time.perf_counter() - t0
        cuda = measure.cuda_peaks()
        caches = [h for h in report.cache_hits if h["method"] != "text_embedding"]
        conn.send(("ran", {
            "total": total, "steps": list(report.timings.get("steps") or []),
            "computed": sum(h["computed"] for h in caches) if caches else None,
            "reused": sum(h["reused"] for h in caches) if caches else None,
            "cuda_peak": cuda["allocated"] if cuda else None,
            "output": out if want_output else None,
        }))


class VariantProcess:
    """The parent's handle on one variant's worker process."""

    def __init__(self, label: str, job: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.label = label
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, job), name=f"omni-bench-{label}", daemon=True)
        self.process.start()
        child.close()  # so that a dead worker reads as EOF here

    def ask(self, *message: Any) -> dict[str, Any]:
        if message:
            self.conn.send(message)
        return self.receive()

    def receive(self) -> dict[str, Any]:
        try:
            reply = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            code = self.process.exitcode
            why = " (killed: out of memory?)" if code is not None and code < 0 else ""
            raise OmniError(f"bench: the process running {self.label!r} ended unexpectedly, exit code {code}{why}"
                            ) from None
        if reply[0] == "error":
            raise _rebuild(*reply[1:])
        if reply[0] == "crash":
            raise OmniError(f"bench: {self.label!r} failed: {reply[1]}")
        return reply[1] if len(reply) > 1 else {}

    def close(self, wait: float = 0.0) -> None:
        """Close the pipe (a worker waiting for a message then exits), give the worker ``wait``
        seconds to exit on its own (its exit handlers release what it holds), then end it."""
        self.conn.close()
        self.process.join(timeout=wait)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


def _rebuild(module: str, qualname: str, message: str) -> OmniError:
    """The worker's OmniError as the same class in this process (OmniError if that fails)."""
    try:
        cls = getattr(importlib.import_module(module), qualname)
        exc = cls(message)
        if isinstance(exc, OmniError):
            return exc
    except Exception:  # noqa: BLE001
        pass
    return OmniError(message)
