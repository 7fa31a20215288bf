"""Capacity model for omni serve / omni serve-ray (docs/scaling.md): a queueing simulation driven by the
measured service-time distribution, checked against the measured 1- and 2-replica runs.

The model: a request spends a fixed time outside the engine (HTTP, Ray's routing, writing the PNG: the
measured per-request overhead) plus its service time on one replica; replicas serve one request at a time
from their own FIFO queue; a new request goes to the replica with fewer outstanding requests of two picked
at random (Ray Serve's power-of-two-choices router: with 1 or 2 replicas, join-the-shortest-queue).
Service times are drawn from the measured ones (bootstrap).

* ``check SCALE.json`` (from ``benchmarks/scale.py --save``): simulate the benchmark's closed loop
  (concurrency 8, the same number of requests) with each configuration's measured service times and
  compare throughput and p50/p95 latency with what was measured; also the ideal prediction for 2 replicas
  from the 1-replica service times (what scaling would give without CPU contention).
* ``plan SCALE.json --rate R --p95 T``: the fewest replicas whose simulated p95 latency at Poisson arrivals
  of R requests/s is at most T seconds (``--speedup S`` divides the service times: a faster device measured
  elsewhere; ``--gpus-per-replica G`` turns replicas into GPUs).

Usage: python benchmarks/capacity.py check results.json
       python benchmarks/capacity.py plan results.json --rate 2 --p95 10 [--speedup 20] [--gpus-per-replica 1]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from pathlib import Path


def simulate(service: list[float], replicas: int, *, overhead: float, requests: int, concurrency: int | None = None,
             rate: float | None = None, seed: int = 0) -> dict:
    """One simulated run: closed loop of ``concurrency`` clients sending ``requests`` in all, or Poisson
    arrivals at ``rate``/s. Returns throughput (requests/s) and p50/p95 latency (s)."""
    rng = random.Random(seed)
    free_at = [0.0] * replicas  # when each replica finishes the work already assigned to it
    outstanding: list[list[float]] = [[] for _ in range(replicas)]  # finish times of its queued/running requests
    latencies, arrivals = [], []
    first = 0.0
    if concurrency is not None:
        arrivals = [(0.0, i) for i in range(min(concurrency, requests))]
        heapq.heapify(arrivals)
        sent = len(arrivals)
    else:
        t = 0.0
        for i in range(requests):
            t += rng.expovariate(rate)
            arrivals.append((t, i))
        first, sent = arrivals[0][0], requests
    end = 0.0
    while arrivals:
        t, _ = heapq.heappop(arrivals)
        reached = t + overhead / 2  # half the overhead before the engine (request), half after (response)
        for queue in outstanding:
            while queue and queue[0] <= reached:
                queue.pop(0)
        picks = [0] if replicas == 1 else rng.sample(range(replicas), 2)
        r = min(picks, key=lambda k: (len(outstanding[k]), rng.random()))
        start = max(reached, free_at[r])
        free_at[r] = start + rng.choice(service)
        outstanding[r].append(free_at[r])
        done = free_at[r] + overhead / 2
        latencies.append(done - t)
        end = max(end, done)
        if concurrency is not None and sent < requests:  # that client sends its next request
            heapq.heappush(arrivals, (done, sent))
            sent += 1
    return {"rps": requests / (end - first), "p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95)}


def _pct(values: list[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def predict(service: list[float], replicas: int, *, overhead: float, runs: int = 200, **kw) -> dict:
    """Median and 90 % range of ``runs`` simulations (different draws of the service times)."""
    sims = [simulate(service, replicas, overhead=overhead, seed=i, **kw) for i in range(runs)]
    out = {}
    for key in ("rps", "p50", "p95"):
        xs = sorted(s[key] for s in sims)
        out[key] = {"median": round(statistics.median(xs), 4), "range90": [round(_pct(xs, 0.05), 4),
                                                                        round(_pct(xs, 0.95), 4)]}
    return out


def overhead_of(results: dict) -> float:
    over = results.get("overhead", {})
    return over.get("outside_service_ms", 0.0) / 1000


def check(results: dict) -> dict:
    rep = results["replicas"]
    overhead = overhead_of(results)
    out = {"overhead_s": overhead, "by_replicas": {}}
    for count in ("1", "2"):
        service = rep["service_s"][count]
        predicted = predict(service, int(count), overhead=overhead, requests=rep["requests"],
                            concurrency=rep["concurrency"])
        measured = rep["by_replicas"][count]
        out["by_replicas"][count] = {
            "service_s_median": round(statistics.median(service), 4), "predicted": predicted,
            "measured": {k: measured[k]["median"] for k in ("rps", "p50", "p95")},
            "error": {k: round(measured[k]["median"] / predicted[k]["median"] - 1, 3) for k in ("rps", "p50", "p95")}}
    ideal = predict(rep["service_s"]["1"], 2, overhead=overhead, requests=rep["requests"],
                    concurrency=rep["concurrency"])
    out["ideal_2_replicas_from_1_replica_service"] = ideal
    out["service_inflation_2_vs_1"] = round(statistics.median(rep["service_s"]["2"])
                                            / statistics.median(rep["service_s"]["1"]), 3)
    return out


def plan(results: dict, rate: float, p95: float, speedup: float, gpus: float, most: int = 256) -> dict:
    service = [s / speedup for s in results["replicas"]["service_s"]["1"]]
    overhead = overhead_of(results)
    mean = statistics.mean(service)
    need = max(1, int(rate * mean) + 1)  # below this the queue grows without bound
    for replicas in range(need, most + 1):
        sim = predict(service, replicas, overhead=overhead, requests=4000, rate=rate, runs=20)
        if sim["p95"]["median"] <= p95:
            return {"rate": rate, "p95_target_s": p95, "service_mean_s": round(mean, 4), "replicas": replicas,
                    "gpus": replicas * gpus if gpus else None, "utilization": round(rate * mean / replicas, 3),
                    "predicted": sim}
    return {"rate": rate, "p95_target_s": p95, "replicas": None, "reason": f"more than {most} replicas"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("results")
    p = sub.add_parser("plan")
    p.add_argument("results")
    p.add_argument("--rate", type=float, required=True, help="requests per second to serve")
    p.add_argument("--p95", type=float, required=True, help="p95 latency target in seconds")
    p.add_argument("--speedup", type=float, default=1.0, help="service times divided by this (a faster device)")
    p.add_argument("--gpus-per-replica", type=float, default=0.0)
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text())
    if args.command == "check":
        out = check(results)
    else:
        if args.rate <= 0 or args.p95 <= 0 or args.speedup <= 0:
            raise SystemExit("--rate, --p95 and --speedup must be above 0")
        out = plan(results, args.rate, args.p95, args.speedup, args.gpus_per_replica)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
