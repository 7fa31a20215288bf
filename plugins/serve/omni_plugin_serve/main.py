"""``omni serve``: check the arguments, plan the Engine, open the data dir and the socket (all
before loading anything), then serve while the model loads in a thread (``/health/ready`` answers
503 until it is ready). SIGTERM/SIGINT: stop accepting, mark queued jobs cancelled, cancel the
running one (it stops within one step), write their rows, exit 0. A second signal exits at once."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from omni.sdk import OmniError, UsageError

log = logging.getLogger("omni.serve")


@dataclass
class ServeArgs:
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    optimize: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    config: str | None = None
    preset: str | None = None
    strict: bool = False
    device: str | None = None
    dtype: str | None = None
    max_queue: int = 16
    data_dir: str | None = None
    api_key: str | None = None
    max_size: int | None = None
    max_steps: int = 1000
    max_n: int = 8
    max_frames: int | None = None
    max_upload: int = 32  # MiB
    keep_jobs: int = 1000


def check_args(args: ServeArgs) -> None:
    """Every flag's range, as one ``UsageError`` naming the flag."""
    bounds = (("--port", args.port, 0, 65535), ("--max-queue", args.max_queue, 1, None),
              ("--max-size", args.max_size, 8, None), ("--max-steps", args.max_steps, 1, None),
              ("--max-n", args.max_n, 1, None), ("--max-frames", args.max_frames, 1, None),
              ("--max-upload", args.max_upload, 1, 4096),
              ("--keep-jobs", args.keep_jobs, 1, None))
    for flag, value, lo, hi in bounds:
        if value is not None and (value < lo or (hi is not None and value > hi)):
            raise UsageError(f"{flag} must be {f'in {lo}..{hi}' if hi is not None else f'at least {lo}'}, "
                             f"got {value}")
    if args.api_key is not None and not args.api_key.strip():
        raise UsageError("--api-key is empty (unset OMNI_API_KEY or give a key)")


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: cannot listen ({exc.strerror})") from None
    return sock


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Server(uvicorn.Server):
    """uvicorn, with omni's shutdown: the first signal drains the Engine in a thread, then exits
    (status 0, the signal is not re-raised); a second one exits at once."""

    def __init__(self, config: uvicorn.Config, drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._draining:
            self.should_exit = self.force_exit = True
            return
        self._draining = True
        threading.Thread(target=self._drain_then_exit, name="omni-serve-drain", daemon=True).start()

    def _drain_then_exit(self) -> None:
        try:
            self._drain()
        except Exception as exc:  # noqa: BLE001
            log.error("shutdown: %s: %s", type(exc).__name__, exc)
        finally:
            self.should_exit = True


def log_to_stderr(prefix: str = "omni serve") -> None:
    """The server's log lines on stderr, each starting with ``prefix:`` (omni-plugin-ray's command too)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def serve_forever(args: ServeArgs) -> int:
    """Run the server until a signal; returns the exit status (0, or the load failure's)."""
    from omni.sdk import Engine, EngineLimits, cache_dir, engine_options

    from omni_plugin_serve.app import State, create_app
    from omni_plugin_serve.jobs import Jobs
    from omni_plugin_serve.metrics import Metrics
    from omni_plugin_serve.store import Store

    check_args(args)
    options = engine_options(config=args.config, optimize=args.optimize, sets=args.sets, preset=args.preset,
                             strict=args.strict, device=args.device, dtype=args.dtype)
    limits = EngineLimits(max_size=args.max_size, max_steps=args.max_steps, max_n=args.max_n,
                          max_frames=args.max_frames)
    engine = Engine(args.model, max_queue=args.max_queue, limits=limits, lazy=True, **options)
    store = Store(args.data_dir or cache_dir("serve"))
    sock = bind(args.host, args.port)
    log_to_stderr()
    metrics = Metrics(engine)
    jobs = Jobs(engine, store, metrics, keep=args.keep_jobs)
    state = State(engine=engine, store=store, jobs=jobs, metrics=metrics, api_key=args.api_key,
                  max_upload=args.max_upload * 2**20)
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            server_header=False)
    server = Server(config, drain=jobs.shutdown)
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    outcome = {"code": 0}

    def load() -> None:
        try:
            engine.load()
        except BaseException as exc:  # noqa: BLE001 - reported as one line; the server exits
            outcome["code"] = exc.exit_code if isinstance(exc, OmniError) else 1
            log.error("error: %s", " ".join(str(exc).split()) or type(exc).__name__)
            server.should_exit = True
            return
        results = engine.load_report.config_resolved
        applied = ", ".join(r.name for r in results if r.status == "applied") or "none"
        skipped = ", ".join(f"{r.name} ({r.reason})" for r in results if r.status != "applied") or "none"
        log.info("ready: %s (family %s) at %s; applied: %s; skipped: %s", engine.model, engine.family.name, url,
                 applied, skipped)

    if store.recovered:
        log.info("%d job(s) left queued or running by a stopped server marked failed", store.recovered)
    if not _loopback(str(host)) and args.api_key is None:
        log.warning("listening on %s without --api-key: anyone who can reach it can use it", host)
    log.info("loading %s; listening on %s (data dir %s)", engine.model, url, store.root)
    threading.Thread(target=load, name="omni-serve-load", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        store.close()
    return outcome["code"]
