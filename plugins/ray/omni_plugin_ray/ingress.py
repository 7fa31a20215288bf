"""The ingress: ``omni serve``'s FastAPI app (its routes, job store, artifacts and metrics, unchanged) as
a Ray Serve ingress deployment of one replica, whose engine is a :class:`RemoteEngine` over the engine
replicas. The app is built in the replica (``__serve_build_asgi_app__``), after the constructor has
opened the data dir and read a replica's load report.

Metrics add, per engine replica: ``omni_replica_jobs_total{replica, status}`` (jobs each replica ended:
completed, failed, cancelled) and ``omni_replica_jobs_in_flight{replica}`` (queued or running there)."""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve

from omni_plugin_ray.remote import RemoteEngine, RemoteJob


@serve.ingress()
class Ingress:
    # Ray Serve awaits an async constructor; mypy requires every __init__ to return None
    async def __init__(  # type: ignore[misc]
            self, replicas: Any, model: str, engine_options: dict[str, Any], *, limits: Any, data_dir: str,
            api_key: str | None, keep_jobs: int) -> None:
        from omni.sdk import Engine
        from omni_plugin_serve.app import State
        from omni_plugin_serve.jobs import Jobs
        from omni_plugin_serve.metrics import Metrics
        from omni_plugin_serve.store import Store
        from prometheus_client import Counter, Gauge

        local = Engine(model, lazy=True, limits=limits, **engine_options)  # the plan and limits; never loaded
        described = await replicas.describe.remote()
        engine = RemoteEngine(local, replicas, described["load_report"], on_job=self._tally)
        store = Store(data_dir)
        metrics = Metrics(engine)
        self.ended = Counter("omni_replica_jobs", "jobs each engine replica ended, by final status",
                             ("replica", "status"), registry=metrics.registry)
        self.in_flight = Gauge("omni_replica_jobs_in_flight", "jobs queued or running on each engine replica",
                               ("replica",), registry=metrics.registry)
        self.state = State(engine=engine, store=store, jobs=Jobs(engine, store, metrics, keep=keep_jobs),
                           metrics=metrics, api_key=api_key)

    def _tally(self, job: RemoteJob, status: str) -> None:
        if status == "accepted":
            self.in_flight.labels(job.replica).inc()
            return
        self.in_flight.labels(job.replica).dec()
        self.ended.labels(job.replica, status).inc()

    def __serve_build_asgi_app__(self) -> Any:
        from omni_plugin_serve.app import create_app

        return create_app(self.state)

    async def drain(self) -> int:
        """Stop accepting, cancel the queued and running jobs (each stops within one step on its replica),
        write their rows; returns how many were cancelled while queued."""
        cancelled: list[Any] = []

        def shutdown() -> None:
            cancelled.extend(job for job in self.state.engine.jobs.values() if job.status == "queued")
            self.state.jobs.shutdown()
            self.state.store.close()

        await asyncio.to_thread(shutdown)
        return len(cancelled)
