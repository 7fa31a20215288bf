"""Serving benchmarks for `omni serve` (docs/serving.md), every comparison measured side by side in
one run, ratios with their 95 % interval (omni.stats, the statistics of `omni bench`):

1. overhead: the same request through the server (HTTP, PNG written, base64 in the JSON) vs
   `Engine.generate` in this process, medium-flux, pairs interleaved. Target: ratio <= 1.03.
2. warm vs cold: one request to the warm server vs `omni run` in a fresh process (shapes, medium-flux).
3. throughput and p50/p95 latency at concurrency 1, 4 and 16 (shapes, one pipeline, FIFO queue).
4. abort: steps and milliseconds from DELETE to `cancelled` (target: at most 1 step), shapes and
   medium-flux.
5. prompt-embedding cache: a repeated prompt vs a new one (encode time and request time, paired).

Servers run as `omni serve` subprocesses on 127.0.0.1 with the same torch thread count as this
process. Usage: python benchmarks/serve.py [--sections overhead,cold,throughput,abort,prompt-cache]
[--steps 10] [--threads 1] [--device cpu|cuda] [--dtype bfloat16] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGET_OVERHEAD = 1.03
PROMPT = "a red circle on a blue background"
SECTIONS = ("overhead", "cold", "throughput", "abort", "prompt-cache")


def say(message: str) -> None:
    print(f"serve.py: {message}", file=sys.stderr, flush=True)


class Server:
    """``omni serve MODEL`` on a free loopback port, with its own data dir."""

    def __init__(self, model: str, args: argparse.Namespace, tmp: Path, *flags: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / f"{model}.log", "wb")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "omni", "serve", model, "--port", str(self.port), "--data-dir",
               str(tmp / f"{model}-data"), "--max-queue", "64", *device_flags(args), *flags]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=child_env(args))
        deadline = time.monotonic() + 600
        while self.call("GET", "/health/ready", timeout=5)[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"omni serve {model} did not become ready; see {self.log.name}")
            time.sleep(0.25)

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 600) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return 0, {}

    def image(self, **fields) -> tuple[float, dict]:
        t0 = time.perf_counter()
        status, body = self.call("POST", "/v1/images/generations", {"prompt": PROMPT, **fields})
        if status != 200:
            raise SystemExit(f"request failed: {status} {body}")
        return time.perf_counter() - t0, body

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


def child_env(args: argparse.Namespace) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}


def device_flags(args: argparse.Namespace) -> list[str]:
    return [*(["--device", args.device] if args.device else []), *(["--dtype", args.dtype] if args.dtype else [])]


def pct(values: list[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


# ---------------------------------------------------------------------------- sections
def overhead(server: Server, args: argparse.Namespace) -> dict:
    import omni
    from omni.stats import Stopping, repeat_pairs

    engine = omni.Engine("medium-flux", device=args.device, dtype=args.dtype)
    fields = {"num_inference_steps": args.steps, "seed": 0}
    in_process, http = [], []

    def local(_i: int) -> float:
        t0 = time.perf_counter()
        engine.generate(PROMPT, **fields)
        in_process.append(time.perf_counter() - t0)
        return in_process[-1]

    def remote(_i: int) -> float:
        http.append(server.image(**fields)[0])
        return http[-1]

    local(0), remote(0)  # warm-up
    in_process.clear(), http.clear()
    ratio, stopped = repeat_pairs(local, remote, Stopping(min_pairs=6, max_pairs=args.max_pairs,
                                                          max_seconds=args.max_seconds, precision=0.01),
                                  on_pair=lambda i, r: say(f"overhead pair {i}: {r.text()}"))
    engine.close()
    verdict = {"below": "met", "above": "not met"}.get(ratio.compare(TARGET_OVERHEAD), "undecided")
    return {"model": "medium-flux", "steps": args.steps, "in_process_s": round(statistics.median(in_process), 4),
            "http_s": round(statistics.median(http), 4), "ratio": ratio.to_dict(), "ratio_text": ratio.text(),
            "stopped": stopped, "target": TARGET_OVERHEAD, "verdict": verdict}


def cold(servers: dict[str, Server], args: argparse.Namespace, tmp: Path) -> dict:
    from omni.sdk import PairedRatio

    out = {}
    for model, server in servers.items():
        warm, fresh = [], []
        for i in range(args.cold_runs):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "omni", "run", model, "--prompt", PROMPT, "--seed", str(i),
                                   "--output", str(tmp / f"cold-{model}-{i}.png"), "--json", *device_flags(args)],
                                  check=False, capture_output=True, env=child_env(args), timeout=900)
            fresh.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(f"omni run {model} failed: {proc.stderr.decode()[-2000:]}")
            warm.append(server.image(seed=i)[0])
            say(f"cold {model} {i}: fresh process {fresh[-1]:.2f} s, warm server {warm[-1]:.3f} s")
        ratio = PairedRatio([f / w for f, w in zip(fresh, warm)])
        out[model] = {"warm_s": round(statistics.median(warm), 4), "cold_s": round(statistics.median(fresh), 3),
                      "ratio": ratio.to_dict(), "ratio_text": ratio.text(1)}
    return out


def throughput(server: Server, args: argparse.Namespace) -> dict:
    out = {}
    for concurrency in (1, 4, 16):
        rounds = []
        n = max(args.requests, concurrency)  # at least one request per client
        for r in range(args.rounds):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                latencies = list(pool.map(lambda i: server.image(seed=i)[0], range(n)))
            wall = time.perf_counter() - t0
            rounds.append({"n": n, "rps": n / wall, "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95)})
            say(f"throughput c={concurrency} round {r}: {rounds[-1]['rps']:.3f} req/s, p50 {rounds[-1]['p50']:.2f} s, "
                f"p95 {rounds[-1]['p95']:.2f} s")
        out[str(concurrency)] = {"requests": n, **{
            k: {"median": round(statistics.median(x[k] for x in rounds), 4), "min": round(min(x[k] for x in rounds), 4),
                "max": round(max(x[k] for x in rounds), 4)} for k in ("rps", "p50", "p95")}}
    return {"model": "shapes", "rounds": args.rounds, "by_concurrency": out}


def abort(server: Server, model: str, args: argparse.Namespace) -> dict:
    after, latency_ms, client_ms, step_s = [], [], [], []
    for _ in range(args.aborts):
        status, job = server.call("POST", "/v1/jobs", {"prompt": PROMPT, "num_inference_steps": 500})
        while True:
            status, now = server.call("GET", f"/v1/jobs/{job['id']}")
            if now["step"] >= 2:
                break
            time.sleep(0.01)
        t0 = time.perf_counter()
        status, gone = server.call("DELETE", f"/v1/jobs/{job['id']}")
        client_ms.append((time.perf_counter() - t0) * 1000)
        after.append(gone["steps_ran"] - gone["cancelled_at_step"])
        latency_ms.append(gone["cancel_latency_ms"])
        status, ok = server.call("POST", "/v1/images/generations", {"prompt": PROMPT, "num_inference_steps": 2})
        assert status == 200, ok  # the pipeline serves the next request
        _, trace = server.call("GET", f"/v1/jobs/{ok['job_id']}/trace")
        step_s += [t["seconds"] for t in trace["timeline"] if t["stage"] == "step"]
    return {"model": model, "trials": args.aborts, "steps_after_delete": {"max": max(after),
                                                                         "median": statistics.median(after)},
            "cancel_ms": {"median": round(statistics.median(latency_ms), 1), "max": round(max(latency_ms), 1)},
            "delete_round_trip_ms": round(statistics.median(client_ms), 1),
            "step_ms_median": round(statistics.median(step_s) * 1000, 1), "target_steps": 1,
            "verdict": "met" if max(after) <= 1 else "not met"}


def prompt_cache(server: Server, args: argparse.Namespace) -> dict:
    from omni.sdk import PairedRatio

    encode, total = PairedRatio(), PairedRatio()
    fields = {"num_inference_steps": args.steps, "seed": 0}
    server.image(**fields)  # the repeated prompt is now cached

    def one(prompt: str) -> tuple[float, float]:
        seconds, body = server.image(**{**fields, "prompt": prompt})
        _, trace = server.call("GET", f"/v1/jobs/{body['job_id']}/trace")
        enc = next(t["seconds"] for t in trace["timeline"] if t["stage"] == "encode")
        return enc, seconds

    for i in range(args.cache_pairs):
        new = one(f"{PROMPT}, variation {i} {time.time_ns()}")
        repeated = one(PROMPT)
        encode.ratios.append(repeated[0] / new[0])
        total.ratios.append(repeated[1] / new[1])
    return {"model": "medium-flux", "steps": args.steps, "encode_ratio": encode.to_dict(), "encode_text": encode.text(),
            "request_ratio": total.to_dict(), "request_text": total.text()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--steps", type=int, default=10, help="medium-flux steps (shapes keeps its 20)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--max-pairs", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--aborts", type=int, default=6)
    parser.add_argument("--cache-pairs", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    import torch
    from omni.sdk import device_name

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="omni-serve-bench-"))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    result: dict = {"date": time.strftime("%Y-%m-%d"), "device": device_name(device), "threads": args.threads,
                    "dtype": args.dtype or "float32"}
    servers: dict[str, Server] = {}
    try:
        if {"overhead", "cold", "abort", "prompt-cache"} & set(sections):
            servers["medium-flux"] = Server("medium-flux", args, tmp)
        if {"cold", "throughput", "abort"} & set(sections):
            servers["shapes"] = Server("shapes", args, tmp)
        if "overhead" in sections:
            result["overhead"] = overhead(servers["medium-flux"], args)
        if "cold" in sections:
            result["cold"] = cold(servers, args, tmp)
        if "throughput" in sections:
            result["throughput"] = throughput(servers["shapes"], args)
        if "abort" in sections:
            result["abort"] = [abort(servers[m], m, args) for m in ("shapes", "medium-flux")]
        if "prompt-cache" in sections:
            result["prompt_cache"] = prompt_cache(servers["medium-flux"], args)
    finally:
        for server in servers.values():
            server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['date']}, {result['device']}, {args.threads} thread(s), {result['dtype']}")
    if "overhead" in result:
        o = result["overhead"]
        print(f"overhead (medium-flux, {o['steps']} steps): in process {o['in_process_s']:.3f} s | HTTP "
              f"{o['http_s']:.3f} s | ratio {o['ratio_text']} | target <= {TARGET_OVERHEAD}: {o['verdict']}")
    for model, c in result.get("cold", {}).items():
        print(f"warm vs cold ({model}): warm server {c['warm_s']:.3f} s | fresh `omni run` {c['cold_s']:.2f} s | "
              f"cold/warm {c['ratio_text']}")
    for conc, t in result.get("throughput", {}).get("by_concurrency", {}).items():
        print(f"throughput (shapes) c={conc}, {t['requests']} requests: {t['rps']['median']:.3f} req/s "
              f"({t['rps']['min']:.3f}..{t['rps']['max']:.3f}) | p50 {t['p50']['median']:.2f} s | p95 "
              f"{t['p95']['median']:.2f} s")
    for a in result.get("abort", []):
        print(f"abort ({a['model']}): steps after DELETE max {a['steps_after_delete']['max']} (target <= 1: "
              f"{a['verdict']}) | cancel {a['cancel_ms']['median']} ms median, {a['cancel_ms']['max']} ms max | "
              f"step {a['step_ms_median']} ms")
    if "prompt_cache" in result:
        p = result["prompt_cache"]
        print(f"prompt-embedding cache (medium-flux): encode repeated/new {p['encode_text']} | request "
              f"repeated/new {p['request_text']}")


if __name__ == "__main__":
    main()
