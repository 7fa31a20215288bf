"""``omni serve-ray``: check every flag (``omni serve``'s and the Ray ones) before starting anything,
start Ray (``ray.init()``: a local cluster, or ``--ray-address`` to join one), deploy the ingress and
the engine replicas on Ray Serve, wait until every replica has loaded, then serve until SIGTERM/SIGINT:
drain (queued and running jobs cancelled, their rows written), delete the application, stop Ray if this
process started it. A second signal exits at once."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

from omni.sdk import OmniError, UsageError
from omni_plugin_serve.main import ServeArgs, bind, check_args, log_to_stderr

log = logging.getLogger("omni.serve")
APP = "omni"


@dataclass
class RayOptions:
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    replica_cpus: float = 1.0
    replica_gpus: float = 0.0
    ray_address: str | None = None

    def check(self) -> None:
        if self.replicas < 1:
            raise UsageError(f"--replicas must be at least 1, got {self.replicas}")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise UsageError("--min-replicas and --max-replicas go together (autoscaling between them)")
        if self.min_replicas is not None and self.max_replicas is not None \
                and not 0 <= self.min_replicas <= self.max_replicas >= 1:
            raise UsageError(f"--min-replicas {self.min_replicas} --max-replicas {self.max_replicas}: need "
                             "0 <= min <= max and max >= 1")
        if self.target_ongoing_requests <= 0:
            raise UsageError(f"--target-ongoing-requests must be above 0, got {self.target_ongoing_requests}")
        if self.replica_cpus <= 0 or self.replica_gpus < 0:
            raise UsageError("--replica-cpus must be above 0 and --replica-gpus at least 0")

    def scaling(self) -> dict[str, Any]:
        if self.min_replicas is None:
            return {"num_replicas": self.replicas}
        return {"autoscaling_config": {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                       "initial_replicas": max(self.min_replicas, 1),
                                       "target_ongoing_requests": self.target_ongoing_requests}}


@dataclass
class Plan:
    """Everything checked before Ray starts: Engine options, limits, data dir, a free port."""

    options: dict[str, Any]
    limits: Any
    data_dir: str
    port: int


def plan(args: ServeArgs, opts: RayOptions) -> Plan:
    """Check every flag and resolve the model and its plan (``UsageError``: exit 2); loads nothing and
    starts nothing."""
    from omni.sdk import Engine, EngineLimits, cache_dir, engine_options

    check_args(args)
    opts.check()
    options = engine_options(config=args.config, optimize=args.optimize, sets=args.sets, preset=args.preset,
                             strict=args.strict, device=args.device, dtype=args.dtype)
    if options["device"] is None and opts.replica_gpus == 0:
        options["device"] = "cpu"  # a replica without a GPU share must not pick the node's CUDA
    limits = EngineLimits(max_size=args.max_size, max_steps=args.max_steps, max_n=args.max_n,
                          max_frames=args.max_frames)
    Engine(args.model, lazy=True, limits=limits, **options)  # an unknown model or config is exit 2 here
    with bind(args.host, args.port) as sock:  # a busy port is exit 2 here; 0 picks a free one for Serve's proxy
        port = sock.getsockname()[1]
    return Plan(options, limits, os.path.abspath(args.data_dir or str(cache_dir("serve"))), port)


def build(args: ServeArgs, opts: RayOptions, checked: Plan) -> Any:
    """The Ray Serve application: the ingress bound to the engine-replica deployment."""
    from ray import serve

    from omni_plugin_ray.ingress import Ingress
    from omni_plugin_ray.replica import Replica

    replica = serve.deployment(
        name="engine", max_ongoing_requests=args.max_queue + 1, max_queued_requests=args.max_queue,
        ray_actor_options={"num_cpus": opts.replica_cpus, "num_gpus": opts.replica_gpus},
        health_check_period_s=5, **opts.scaling(),
    )(Replica).bind(args.model, checked.options, max_queue=args.max_queue, limits=checked.limits,
           threads=max(1, int(opts.replica_cpus)))
    return serve.deployment(name="ingress", num_replicas=1, max_ongoing_requests=10_000,
                            ray_actor_options={"num_cpus": 0})(Ingress).bind(
        replica, args.model, checked.options, limits=checked.limits, data_dir=checked.data_dir,
        api_key=args.api_key, keep_jobs=args.keep_jobs)


def deploy(args: ServeArgs, opts: RayOptions, checked: Plan | None = None) -> str:
    """Start Serve's HTTP proxy on ``--host``/``--port`` and run the application on the Ray cluster this
    process is connected to; returns the URL once every replica is up. Serve keeps its proxy's port until
    ``serve.shutdown()``: deploy again only after it."""
    from ray import serve

    checked = checked or plan(args, opts)
    app = build(args, opts, checked)
    serve.start(http_options={"host": args.host, "port": checked.port})
    serve.run(app, name=APP, route_prefix="/")
    return f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{checked.port}"


def drain(timeout: float = 120.0) -> int:
    from ray import serve

    return serve.get_app_handle(APP).drain.remote().result(timeout_s=timeout)


def serve_forever(args: ServeArgs, opts: RayOptions) -> int:
    """The command: returns the exit status (0 after a signal, 1 when a replica cannot load)."""
    import ray
    from ray import serve

    checked = plan(args, opts)
    log_to_stderr("omni serve-ray")
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # omni's own lines say what happens
    stop = threading.Event()
    started_here = opts.ray_address is None
    log.info("starting Ray (%s)", opts.ray_address or "a local cluster")
    try:
        ray.init(address=opts.ray_address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except Exception as exc:  # noqa: BLE001 - Ray could not start or reach the cluster: one line
        log.error("error: Ray did not start: %s", " ".join(str(exc).split())[:300] or type(exc).__name__)
        return 1
    try:
        url = deploy(args, opts, checked)
    except OmniError:
        _shutdown(started_here)
        raise
    except Exception as exc:  # noqa: BLE001 - Serve's deploy failure (a replica that cannot load): one line
        log.error("error: %s", " ".join(str(exc).split())[:500] or type(exc).__name__)
        _shutdown(started_here)
        return 1
    scaling = opts.scaling()
    log.info("ready: %s on %s at %s", args.model, f"{scaling['num_replicas']} replica(s)" if "num_replicas" in
             scaling else f"{opts.min_replicas}..{opts.max_replicas} replicas (autoscaling)", url)

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            os._exit(1)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass
    try:
        log.info("shut down: %d queued job(s) cancelled", drain())
        serve.delete(APP)
    except Exception as exc:  # noqa: BLE001
        log.error("shutdown: %s: %s", type(exc).__name__, exc)
    _shutdown(started_here)
    return 0


def _shutdown(started_here: bool) -> None:
    import ray
    from ray import serve

    if started_here:
        serve.shutdown()
    ray.shutdown()
