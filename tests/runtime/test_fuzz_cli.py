"""Property-based tests of ``omni run``'s arguments (issue 14): every generated command line either
reaches model loading or ends with exit 2 (bad input) or 1 and one ``error:`` line, never a
traceback, and a refused run leaves no file behind. In process (Typer's runner, loading replaced by
a stop so no weights load) for hundreds of cases; a small sample in real subprocesses.

Survey mode, for before/after figures::

    python tests/runtime/test_fuzz_cli.py 300
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location("omni_fuzz_config", Path(__file__).with_name("test_fuzz_config.py"))
fz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fz)

EXAMPLES = int(os.environ.get("OMNI_FUZZ_CLI_EXAMPLES", "300"))
SUBPROCESS_EXAMPLES = int(os.environ.get("OMNI_FUZZ_CLI_SUBPROCESS", "12"))


class ReachedLoad(Exception):
    """Raised instead of loading weights: the command line was accepted up to the load."""


ints = fz.weighted((4, st.integers(-3, 300).map(str)), (1, st.integers(-(2**70), 2**70).map(str)),
                   (1, st.sampled_from(["18446744073709551616", "10000000000000", "1.5", "abc", "", "0x10", "-0"])))
paths = st.sampled_from(["out.png", "out.mp4", "out.gif", "out.jpg", "out", "sub/out.png", "adir", "afile/x.png",
                         "/sys/omni-fuzz.png", "/sys/omni-fuzz/x.png", "same.png", "", "./", "afile"])
value_flags = fz.weighted(
    (4, fz.valid_key.flatmap(lambda k: fz.plausible(k).map(lambda v: ("--set", f"{k}={v}")))),
    (1, fz.key.map(lambda k: ("--set", k))),
    (2, st.sampled_from(fz.OPTIMIZATIONS).map(lambda n: ("--optimize", n))),
    (1, st.sampled_from(fz.OPTIMIZATIONS).flatmap(fz._typo).map(lambda n: ("--optimize", n))),
    (1, st.sampled_from(fz.PRESETS + ["", "vram"]).map(lambda n: ("--preset", n))),
    (1, st.tuples(st.sampled_from(["--steps", "--height", "--width", "--frames", "--seed"]), ints)),
    (1, st.sampled_from(["float32", "bf16", "float8_e4m3fn", "int8", ""]).map(lambda d: ("--dtype", d))),
    (1, st.sampled_from(["cpu", "cuda", "mps", "", "cuda:0"]).map(lambda d: ("--device", d))),
    (1, paths.map(lambda p: ("--output", p))), (1, paths.map(lambda p: ("--report", p))),
    (1, st.just(("--config", "fuzz.yaml"))),
    (1, st.sampled_from(["", "x" * 3000, "a cat", "\x00"]).map(lambda p: ("--prompt", p))),
)
flags = st.sampled_from(["--strict", "--json", "--force"])
models = fz.weighted((6, st.sampled_from(["tiny-flux", "tiny-wan", "tiny-sd15"])),
                     (1, st.sampled_from(["tiny-flx", "", "flux", "black-forest-labs/FLUX.1-dev", "./nowhere",
                                          "adir", "afile", "org/name"])))
command_lines = st.tuples(models, st.lists(fz.weighted((5, value_flags), (1, flags.map(lambda f: (f,)))), max_size=5),
                          fz.yaml_texts())


def _argv(case) -> tuple[list[str], bytes]:
    model, parts, yaml_text = case
    return ["run", model] + [p for part in parts for p in part], yaml_text


def _workspace(folder: str, yaml_text: bytes) -> set[str]:
    """What the command lines name: a folder, a plain file, the YAML file; returns the listing."""
    os.makedirs(os.path.join(folder, "adir"), exist_ok=True)
    Path(folder, "afile").write_text("a plain file\n")
    Path(folder, "fuzz.yaml").write_bytes(yaml_text)
    return _listing(folder)


def _listing(folder: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs + [""]}


def run_in_process(argv: list[str], cwd: str) -> tuple[str, str]:
    """-> (outcome, stderr): "reached load", "refused", or what went wrong."""
    from typer.testing import CliRunner

    from omni.cli.app import app
    from omni.runtime import session

    def stop(*_a, **_k):
        raise ReachedLoad

    original, session.Session.load = session.Session.load, classmethod(stop)
    here = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, argv, catch_exceptions=True)
    finally:
        os.chdir(here)
        session.Session.load = original
    stderr = result.stderr
    if isinstance(result.exception, ReachedLoad):
        return "reached load", stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"traceback: {type(result.exception).__name__}: {str(result.exception)[:150]}", stderr
    if result.exit_code == 0:
        return "exit 0 without loading", stderr
    return _judge(result.exit_code, stderr), stderr


def _judge(code: int, stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if "Traceback" in stderr:
        return "traceback in stderr"
    if code not in (1, 2):
        return f"exit {code}"
    if len(errors) != 1:
        return f"exit {code} with {len(errors)} 'error:' lines"
    return "refused"


def check(case) -> str:
    argv, yaml_text = _argv(case)
    with tempfile.TemporaryDirectory(prefix="omni-fuzz-cli-") as folder:
        before = _workspace(folder, yaml_text)
        outcome, _ = run_in_process(argv, folder)
        if outcome == "refused" and _listing(folder) != before:
            return f"refused but wrote {sorted(_listing(folder) - before)[:3]}"
        return outcome


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.generate, Phase.shrink])
@given(command_lines)
def test_every_command_line_loads_or_fails_with_one_line(case):
    outcome = check(case)
    assert outcome in ("reached load", "refused"), (outcome, _argv(case)[0])


@pytest.mark.slow
@settings(max_examples=SUBPROCESS_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.generate])
@given(command_lines)
def test_refused_command_lines_in_a_subprocess(case):
    """The real CLI (its own interpreter, real stdout/stderr): one line, exit 2 or 1, no file."""
    argv, yaml_text = _argv(case)
    assume(not any("\x00" in a for a in argv))  # an exec() argument cannot hold a NUL byte
    assume(check(case) == "refused")  # those that pass validation would load weights: not this test's job
    with tempfile.TemporaryDirectory(prefix="omni-fuzz-cli-") as folder:
        before = _workspace(folder, yaml_text)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
        proc = subprocess.run([sys.executable, "-m", "omni", *argv], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=300)
        assert _judge(proc.returncode, proc.stderr) == "refused", (argv, proc.returncode, proc.stderr[-2000:])
        assert _listing(folder) == before, argv


def _survey(n: int) -> None:
    import json
    from collections import Counter

    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate])
    @given(command_lines)
    def cases(case):
        outcome = check(case)
        counts[outcome.split(":")[0]] += 1
        examples.setdefault(outcome[:140], _argv(case)[0])

    cases()
    print(json.dumps({"cases": sum(counts.values()), **counts}, indent=1))
    for outcome, argv in examples.items():
        if outcome not in ("reached load", "refused"):
            print(f"- {outcome}\n    {argv!r:.300}")


if __name__ == "__main__":
    _survey(int(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES)
