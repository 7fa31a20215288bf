"""Wall-time ratio of `omni capabilities flux` to `python -c "import diffusers"`, measured in one run.

Target: <= 0.15. Each command runs in a fresh process, interleaved, N times; the median is compared.
Usage: python benchmarks/cli_startup.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "omni", "capabilities", "flux"]
    ref = [sys.executable, "-c", "import diffusers"]
    wall(cli), wall(ref)  # warm the OS file cache
    cli_t, ref_t = [], []
    for _ in range(args.runs):
        cli_t.append(wall(cli))
        ref_t.append(wall(ref))
    result = {
        "omni_capabilities_flux_s": round(statistics.median(cli_t), 4),
        "import_diffusers_s": round(statistics.median(ref_t), 4),
        "ratio": round(statistics.median(cli_t) / statistics.median(ref_t), 4),
        "target": 0.15,
        "runs": args.runs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"omni capabilities flux : {result['omni_capabilities_flux_s']:.3f} s (median of {args.runs})")
        print(f"python -c 'import diffusers': {result['import_diffusers_s']:.3f} s")
        print(f"ratio: {result['ratio']:.3f} (target <= {result['target']})")


if __name__ == "__main__":
    main()
