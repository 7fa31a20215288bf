"""Parallel shard loading vs sequential, cold and warm page cache, in one run.

medium-flux's transformer (70.6 M parameters, 282 MB fp32) is saved again in many shards
(``save_pretrained(max_shard_size=...)``); then, interleaved in pairs:

* ``component``: ``FluxTransformer2DModel.from_pretrained`` of that folder, sequential (diffusers'
  default) vs parallel (the plugin's ``parallel(workers)``: diffusers' threaded shard loader);
* ``pipeline``: the whole ``omni`` load of the sharded model (``timings.stages.load``) without and with
  ``parallel_loading`` (text encoders and VAE load as usual in both).

Cold: before every run each file of the model folder is dropped from the page cache with
``posix_fadvise(DONTNEED)`` (no root needed); the bytes still resident afterwards are measured with
``fincore`` and reported. Warm: files read once before, nothing dropped. Speedup = sequential /
parallel, median of pairs with the 95 % interval of ``omni.stats``.

Usage: python benchmarks/loading.py [--shard-size 16MB] [--workers 8] [--pairs 8] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def drop(folder: Path) -> None:
    gc.collect()  # a model still alive keeps its shards mapped
    for path in files(folder):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident(folder: Path) -> int | None:
    """Bytes of the folder's files in the page cache (fincore), or None without fincore."""
    if shutil.which("fincore") is None:
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, files(folder))],
                         capture_output=True, text=True)
    return sum(int(x) for x in out.stdout.split()) if out.returncode == 0 else None


def sharded_medium_flux(root: Path, shard_size: str) -> Path:
    from diffusers import FluxTransformer2DModel

    from omni.sdk import model_folder, resolve

    source = Path(model_folder(resolve("medium-flux")))
    folder = root / "medium-flux-sharded"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("transformer"))
    FluxTransformer2DModel.from_pretrained(source / "transformer").save_pretrained(folder / "transformer",
                                                                                   max_shard_size=shard_size)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard-size", default="16MB")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch
    from diffusers import FluxTransformer2DModel

    import omni
    from omni.runtime.session import Session, prepare
    from omni.stats import Stopping, repeat_pairs
    from omni_plugin_parallel_loading.impl import parallel, shard_count

    torch.set_num_threads(1)
    out = {"date": time.strftime("%Y-%m-%d"), "omni": omni.__version__, "cpus": os.cpu_count(),
           "workers": args.workers}
    with tempfile.TemporaryDirectory(dir=os.environ.get("OMNI_BENCH_TMP")) as tmp:
        folder = sharded_medium_flux(Path(tmp), args.shard_size)
        transformer = folder / "transformer"
        shards = shard_count(str(transformer))
        out.update(shards=shards, transformer_bytes=sum(p.stat().st_size for p in files(transformer)),
                   model_bytes=sum(p.stat().st_size for p in files(folder)))
        log(f"{shards} shards, {out['transformer_bytes'] / 1e6:.0f} MB transformer, {out['model_bytes'] / 1e6:.0f} MB model")
        left = []

        def component(par: bool, cold: bool):
            def run(_: int) -> float:
                if cold:
                    drop(folder)
                    left.append(resident(folder))
                t0 = time.perf_counter()
                if par:
                    with parallel(min(args.workers, shards)):
                        FluxTransformer2DModel.from_pretrained(transformer)
                else:
                    FluxTransformer2DModel.from_pretrained(transformer)
                return time.perf_counter() - t0
            return run

        def pipeline(par: bool, cold: bool):
            def run(_: int) -> float:
                if cold:
                    drop(folder)
                    left.append(resident(folder))
                prep = prepare(str(folder), {}, optimize=["parallel_loading"] if par else [],
                               sets={"parallel_loading.num_workers": args.workers} if par else {})
                session = Session.load(prep, device="cpu")
                if par:
                    assert prep.report.result("parallel_loading").status == "applied"
                del session
                return prep.report.timings["stages"]["load"]
            return run

        stop = Stopping(min_pairs=args.pairs, max_pairs=args.pairs, max_seconds=1e9)
        for what, make in (("component", component), ("pipeline", pipeline)):
            for cold in (True, False):
                if not cold:
                    make(False, False)(0)  # read every file once
                label = f"{what} {'cold' if cold else 'warm'}"
                seconds = {"sequential": [], "parallel": []}

                def timed(par, fn):
                    def run(i):
                        s = fn(i)
                        seconds["parallel" if par else "sequential"].append(round(s, 4))
                        return s
                    return run

                ratio, _ = repeat_pairs(timed(True, make(True, cold)), timed(False, make(False, cold)), stop)
                out[label] = {"speedup": ratio.to_dict(), "text": ratio.text(), "seconds": seconds}
                log(f"{label}: sequential / parallel = {ratio.text()}; median sequential "
                    f"{sorted(seconds['sequential'])[len(seconds['sequential']) // 2]:.3f} s, parallel "
                    f"{sorted(seconds['parallel'])[len(seconds['parallel']) // 2]:.3f} s")
        known = sorted(x for x in left if x is not None)
        out["resident_after_drop_bytes"] = {"median": known[len(known) // 2], "max": known[-1]} if known else None
    print(json.dumps(out, indent=2) if args.json else json.dumps(out))


if __name__ == "__main__":
    main()
