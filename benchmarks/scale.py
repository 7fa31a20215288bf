"""Scale-out benchmarks (docs/scaling.md), every comparison measured side by side in one run:

1. replicas: throughput and p50/p95 latency at concurrency 8 through the Ray Serve ingress
   (omni-plugin-ray) with 1 and 2 engine replicas of ``shapes`` (each replica one torch thread), rounds
   alternating between the two; target: 2 replicas >= 1.7x the throughput of 1. Each job's service time
   (its request report's generate time) is kept for benchmarks/capacity.py.
2. overhead: the Ray path's per-request overhead against plain ``omni serve`` at concurrency 1 (tiny-flux,
   4 steps, requests interleaved between the two servers): latency difference in ms and ratio.
3. cfg: CFG parallel on two gloo processes (``omni launch --nproc 2 -- run shapes -O cfg_parallel``) vs one
   process (``omni run shapes``), pairs interleaved: the speedup of the denoising loop and of the whole run.

Usage: python benchmarks/scale.py [--sections replicas,overhead,cfg] [--requests 16] [--rounds 2]
[--pairs 12] [--cfg-pairs 4] [--save results.json]. Statistics: omni.stats (the ones `omni bench` uses).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_SCALING = 1.7
CONCURRENCY = 8
SECTIONS = ("replicas", "overhead", "cfg")


def _serve_bench():
    """benchmarks/serve.py's Server (an ``omni serve`` subprocess) and helpers, loaded from its file."""
    spec = importlib.util.spec_from_file_location("serve_bench", HERE / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sb = _serve_bench()
say = lambda message: print(f"scale.py: {message}", file=sys.stderr, flush=True)  # noqa: E731


class RayServer(sb.Server):
    """The Ray ingress at ``url`` (deployed by this process), spoken to like an ``omni serve`` Server."""

    def __init__(self, url: str) -> None:  # noqa: D107 - no subprocess: Ray runs the servers
        self.url = url

    def stop(self) -> None:
        pass


def ray_deploy(model: str, replicas: int, data_dir: Path) -> RayServer:
    from omni_plugin_ray.main import RayOptions, deploy
    from omni_plugin_serve.main import ServeArgs

    url = deploy(ServeArgs(model=model, port=0, data_dir=str(data_dir), max_queue=64),
                 RayOptions(replicas=replicas, replica_cpus=1))
    return RayServer(url)


def service_time(server: sb.Server, job_id: str) -> float:
    status, trace = server.call("GET", f"/v1/jobs/{job_id}/trace")
    return float(trace["report"]["timings"]["generate"])


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}


# ---------------------------------------------------------------------------- sections
def replicas(args: argparse.Namespace, tmp: Path) -> dict:
    from ray import serve

    rounds: dict[int, list[dict]] = {1: [], 2: []}
    services: dict[int, list[float]] = {1: [], 2: []}
    # ABBA... order (1, 2, 2, 1, 1, 2, ...): drift on a shared box hits both counts alike; consecutive rounds
    # of one count share a deployment (Serve keeps its HTTP port until it shuts down, so each count gets its own)
    order = [(1, 2, 2, 1)[i % 4] for i in range(2 * args.rounds)]
    server, deployed = None, None
    for i, count in enumerate(order):
        if deployed != count:
            if server is not None:
                serve.shutdown()
            server, deployed = ray_deploy("shapes", count, tmp / f"replicas-{i}"), count
            for k in range(2 * count):  # warm every replica
                server.image(seed=k)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            done = list(pool.map(lambda k: server.image(seed=k), range(args.requests)))
        wall = time.perf_counter() - t0
        latencies = [latency for latency, _ in done]
        services[count] += [service_time(server, body["job_id"]) for _, body in done]
        rounds[count].append({"rps": args.requests / wall, "p50": sb.pct(latencies, 0.5),
                              "p95": sb.pct(latencies, 0.95)})
        say(f"replicas={count} round {len(rounds[count])}: {rounds[count][-1]['rps']:.3f} req/s, p50 "
            f"{rounds[count][-1]['p50']:.2f} s, p95 {rounds[count][-1]['p95']:.2f} s")
    serve.shutdown()
    scaling = [b["rps"] / a["rps"] for a, b in zip(rounds[1], rounds[2])]
    return {"model": "shapes", "concurrency": CONCURRENCY, "requests": args.requests, "rounds": args.rounds,
            "by_replicas": {str(k): {m: summary([x[m] for x in v]) for m in ("rps", "p50", "p95")}
                            for k, v in rounds.items()},
            "service_s": {str(k): [round(s, 4) for s in v] for k, v in services.items()},
            "scaling": summary(scaling), "target": TARGET_SCALING,
            "verdict": "met" if min(scaling) >= TARGET_SCALING else (
                "not met" if max(scaling) < TARGET_SCALING else "undecided")}


def overhead(args: argparse.Namespace, tmp: Path) -> dict:
    from omni.sdk import PairedRatio
    from omni.stats import median_interval
    from ray import serve

    fields = {"num_inference_steps": 4}
    plain = sb.Server("tiny-flux", argparse.Namespace(threads=1, device=None, dtype=None), tmp)
    ray_server = ray_deploy("tiny-flux", 1, tmp / "overhead")
    try:
        for i in range(3):  # warm both
            plain.image(seed=i, **fields), ray_server.image(seed=i, **fields)
        pairs, jobs = [], []
        for i in range(args.pairs):
            order = (plain, ray_server) if i % 2 == 0 else (ray_server, plain)
            timed = {server: server.image(seed=i, **fields) for server in order}
            pairs.append((timed[plain][0], timed[ray_server][0]))
            jobs.append(timed[ray_server][1]["job_id"])
        service = [service_time(ray_server, job) for job in jobs]
    finally:
        plain.stop()
        serve.shutdown()
    diffs = [(r - p) * 1000 for p, r in pairs]
    ratio = PairedRatio([r / p for p, r in pairs])
    interval = median_interval(diffs)
    return {"model": "tiny-flux", "steps": 4, "pairs": len(pairs),
            "plain_s": round(statistics.median(p for p, _ in pairs), 4),
            "ray_s": round(statistics.median(r for _, r in pairs), 4),
            "overhead_ms": round(statistics.median(diffs), 1),
            # the Ray path's time outside the engine (HTTP, routing, PNG): what capacity.py adds per request
            "outside_service_ms": round(statistics.median(r - s for (_, r), s in zip(pairs, service)) * 1000, 1),
            "overhead_ms_interval": [round(x, 1) for x in interval] if interval else None,
            "ratio": ratio.to_dict(), "ratio_text": ratio.text()}


def cfg(args: argparse.Namespace, tmp: Path) -> dict:
    from omni.sdk import PairedRatio

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    one_cmd = [sys.executable, "-m", "omni", "run", "shapes", "--json", "--force"]
    two_cmd = [sys.executable, "-m", "omni", "launch", "--nproc", "2", "--", "run", "shapes", "-O", "cfg_parallel",
               "--json", "--force"]
    rows = []
    for i in range(args.cfg_pairs):
        row = {}
        for name, cmd in (("one", one_cmd), ("two", two_cmd)) if i % 2 == 0 else (("two", two_cmd), ("one", one_cmd)):
            t0 = time.perf_counter()
            proc = subprocess.run([*cmd, "-o", str(tmp / f"cfg-{name}.png")], capture_output=True, text=True, env=env,
                                  timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
            report = json.loads(proc.stdout)
            row[name] = {"wall": time.perf_counter() - t0, "denoise": report["timings"]["denoise"]}
        rows.append(row)
        say(f"cfg pair {i}: denoise {row['one']['denoise']:.2f} s in one process, {row['two']['denoise']:.2f} s "
            f"on two ranks")
    denoise = PairedRatio([r["one"]["denoise"] / r["two"]["denoise"] for r in rows])
    wall = PairedRatio([r["one"]["wall"] / r["two"]["wall"] for r in rows])
    return {"model": "shapes", "steps": 20, "pairs": len(rows),
            "denoise_s": {"one": summary([r["one"]["denoise"] for r in rows]),
                          "two": summary([r["two"]["denoise"] for r in rows])},
            "denoise_speedup": denoise.to_dict(), "denoise_speedup_text": denoise.text(),
            "wall_speedup": wall.to_dict(), "wall_speedup_text": wall.text()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--requests", type=int, default=16, help="requests per round at concurrency 8")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=12, help="overhead: interleaved request pairs")
    parser.add_argument("--cfg-pairs", type=int, default=4)
    parser.add_argument("--save", help="write the results (JSON) here, for benchmarks/capacity.py")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omni.sdk import device_name

    results: dict = {"device": device_name("cpu"), "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="omni-scale-") as folder:
        tmp = Path(folder)
        if "cfg" in sections:  # before Ray starts: its idle processes would share the two ranks' cores
            results["cfg"] = cfg(args, tmp)
            sections.remove("cfg")
        if {"replicas", "overhead"} & set(sections):
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            for section in sections:
                results[section] = {"replicas": replicas, "overhead": overhead}[section](args, tmp)
        finally:
            if {"replicas", "overhead"} & set(sections):
                from ray import serve

                serve.shutdown()
                ray.shutdown()
    results["load_average_after"] = os.getloadavg()[0]
    text = json.dumps(results, indent=2)
    if args.save:
        Path(args.save).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
