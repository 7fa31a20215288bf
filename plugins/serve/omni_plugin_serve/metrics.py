"""Prometheus metrics (prometheus-client, in a registry of the server's own), served at ``/metrics``.

Counters are updated when a request is answered (``omni_http_requests_total``) and when a job ends
(everything else, read from the job's request report); gauges are read at scrape time."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
STAGES = ("queue_wait", "encode", "vae_decode", "write")  # the request report's timings
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, engine: Any) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("omni_http_requests", "HTTP requests by route template, method and status code",
                                ("route", "method", "status"), registry=r)
        Gauge("omni_queue_depth", "requests waiting in the engine's queue (the running one excluded)",
              registry=r).set_function(lambda: engine.queue_depth)
        Gauge("omni_jobs_in_flight", "generations running now (one pipeline: 0 or 1)",
              registry=r).set_function(lambda: int(engine.running is not None))
        Gauge("omni_ready", "1 once the model is loaded and optimized", registry=r).set_function(
            lambda: int(engine.ready))
        self.jobs = Counter("omni_jobs", "jobs by final status (completed, failed, cancelled)", ("status",),
                            registry=r)
        self.job_seconds = Histogram("omni_job_duration_seconds", "time from submission to the job's end, by final "
                                     "status", ("status",), buckets=SECONDS, registry=r)
        self.stage_seconds = Histogram("omni_stage_duration_seconds", "completed jobs' stages: queue_wait, encode, "
                                       "step (each denoising step), vae_decode, write", ("stage",), buckets=SECONDS,
                                       registry=r)
        self.denoiser_calls = Counter("omni_denoiser_calls", "denoiser calls of completed jobs by step cache and "
                                      "result (computed, reused)", ("cache", "result"), registry=r)
        self.prompt_cache = Counter("omni_prompt_embedding_cache", "prompt-embedding cache lookups of completed "
                                    "jobs (hit, miss)", ("result",), registry=r)
        self.peak_memory = Gauge("omni_peak_memory_bytes", "highest peak any job reported: rss (process), "
                                 "cuda_allocated, cuda_reserved", ("kind",), registry=r)
        self._peaks: dict[str, int] = {}

    def request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method, str(status)).inc()

    def job(self, status: str, seconds: float, report: dict[str, Any] | None) -> None:
        """A job ended; ``report`` is its request report (stages, cache hits, memory) when it completed."""
        self.jobs.labels(status).inc()
        self.job_seconds.labels(status).observe(max(0.0, seconds))
        if status != "completed" or report is None:
            return
        timings = report.get("timings", {})
        for stage in STAGES:
            if stage in timings:
                self.stage_seconds.labels(stage).observe(timings[stage])
        for seconds_per_step in timings.get("steps", []):
            self.stage_seconds.labels("step").observe(seconds_per_step)
        for hit in report.get("cache_hits", []):
            if hit["method"] == "text_embedding":
                self.prompt_cache.labels("hit").inc(hit["reused"])
                self.prompt_cache.labels("miss").inc(hit["computed"])
            else:
                self.denoiser_calls.labels(hit["method"], "computed").inc(hit["computed"])
                self.denoiser_calls.labels(hit["method"], "reused").inc(hit["reused"])
        memory = report.get("memory", {})
        peaks = {"rss": memory.get("peak_rss_bytes")}
        for kind, value in (memory.get("cuda_peak_generate") or {}).items():
            peaks[f"cuda_{kind}"] = value
        for kind, value in peaks.items():
            if value is not None and value > self._peaks.get(kind, -1):
                self._peaks[kind] = value
                self.peak_memory.labels(kind).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
