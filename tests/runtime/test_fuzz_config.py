"""Property-based tests of the config surface through the Python API (issue 14): every generated
input either resolves or raises omni's own error (``OmniError``); a resolved input's report is strict
JSON (no NaN/Infinity). Inputs: config mappings (valid keys, near-misses, nested sections,
``optimize:`` lists, non-string keys, NaN/±inf, huge numbers, empty mappings), ``--set`` pairs,
``optimize=``/``preset=``/``strict=`` arguments of every type, and YAML texts (aliases, deep nesting,
duplicate keys, bytes that are not UTF-8).

Survey mode, for before/after figures (counts instead of failing at the first bad case)::

    python tests/runtime/test_fuzz_config.py 3000
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import traceback
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import omni
from omni.errors import OmniError
from omni.plugins import get_registry

MODELS = ("tiny-flux", "tiny-wan", "tiny-sd15")
EXAMPLES = int(os.environ.get("OMNI_FUZZ_EXAMPLES", "2500"))


def _surface() -> tuple[dict[str, list[tuple[str, Any]]], list[str], list[str]]:
    """key -> [(option type, option)] for every config key and ``name.option``; optimization and
    preset names."""
    reg = get_registry()
    keys: dict[str, list[tuple[str, Any]]] = {}
    for d in reg.optimizations.values():
        for ck in d.spec.config_keys:
            opt = d.spec.option(ck.option) if ck.option else None
            keys.setdefault(ck.key, []).append(
                (opt.type, opt) if opt else ("choice", ck.when) if ck.when else ("bool", None))
            for q, allowed in ck.requires.items():
                keys.setdefault(q, []).append(("choice", tuple(str(a) for a in allowed if a is not None)))
        for o in d.spec.options:
            keys.setdefault(f"{d.spec.name}.{o.name}", []).append((o.type, o))
    for reserved in ("strict", "allow_pickle"):
        keys[reserved] = [("bool", None)]
    return keys, [d.spec.name for d in reg.optimizations.values()], [d.spec.name for d in reg.presets.values()]


SURFACE, OPTIMIZATIONS, PRESETS = _surface()
KEYS = sorted(SURFACE) + ["optimize", "preset", "config", "disable"]


def weighted(*pairs: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy with the given weights (``st.one_of`` flattens nested choices, so a branch that is
    itself a ``one_of`` of eight would otherwise win eight times out of nine)."""
    return st.sampled_from([s for w, s in pairs for _ in range(w)]).flatmap(lambda s: s)


def _typo(word: str) -> st.SearchStrategy[str]:
    """A near-miss of ``word``: a letter dropped, doubled or swapped."""
    return st.integers(0, max(len(word) - 1, 0)).flatmap(lambda i: st.sampled_from([
        word[:i] + word[i + 1:], word[:i] + word[i] * 2 + word[i + 1:],
        word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:], word.upper(), word + "."]))


valid_key = st.sampled_from(KEYS)
key = weighted((6, valid_key), (2, valid_key.flatmap(_typo)), (1, st.text("abcdefghijklmnopqrstuvwxyz_.-", max_size=12)))
odd_key = st.one_of(st.integers(-3, 3), st.none(), st.booleans(), st.floats(allow_nan=True))
floats = st.floats(allow_nan=True, allow_infinity=True)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2**10), st.integers(-(10**30), 10**30), floats,
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1", "0", "0.5", "true", "false", "", " ", "0x10", "fp8",
                     "float8_e4m3fn", "bf16", "teacache", "vae_tiling,teacache", "x" * 5000, "none", "null"]),
    st.text(max_size=20), st.sampled_from(OPTIMIZATIONS))
value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(key, odd_key), inner, max_size=3)), max_leaves=8)
numbers = st.one_of(st.integers(-5, 300), st.integers(-(10**30), 10**30), floats,
                    st.sampled_from(["nan", "-inf", ".inf", "1e400", "0x10", "3", "0.25", "-0.0"]))
TYPED = {
    "bool": st.one_of(st.booleans(), st.sampled_from(["true", "no", "on", "2", "", "maybe"]), st.integers(-1, 5),
                      st.just({}), st.just([])),
    "int": numbers, "float": numbers,
    "dtype": st.sampled_from(["bf16", "fp16", "float32", "float8_e4m3fn", "fp8", "int8", "torch.float16", ""]),
    "floats": st.one_of(st.lists(numbers, max_size=5), st.text(",.0123456789nai[]", max_size=12), numbers),
    "strs": st.one_of(st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3), st.text(max_size=12)),
    "str": st.one_of(st.text(max_size=12), st.just({}), st.just(["a"])),
    "path": st.one_of(st.text(max_size=12), st.sampled_from(["/", "/nonexistent/deeper/x", "~", ""])),
}


def plausible(name: str) -> st.SearchStrategy[Any]:
    """A value of the type ``name`` declares (choices, near-miss choices, edge numbers), or anything."""
    out = []
    for kind, decl in SURFACE.get(name, []):
        if kind == "choice":
            choices = list(getattr(decl, "choices", decl) or ()) or ["x"]
            out.append(st.one_of(st.sampled_from(choices), st.sampled_from(choices).flatmap(_typo)))
        else:
            out.append(TYPED.get(kind, value))
    return weighted((4, st.one_of(*out)), (1, value)) if out else value


entry = weighted((8, valid_key.flatmap(lambda k: st.tuples(st.just(k), plausible(k)))),
                 (2, st.tuples(key, value)), (1, st.tuples(odd_key, value)))
optimize_entry = st.one_of(
    st.sampled_from(OPTIMIZATIONS), st.sampled_from(OPTIMIZATIONS).flatmap(_typo), scalar,
    st.sampled_from(OPTIMIZATIONS).flatmap(lambda n: st.dictionaries(
        st.just(n), st.one_of(st.none(), value, st.lists(entry.filter(lambda e: e[0] != "optimize"), max_size=2).map(
            lambda es: {str(k).split(".", 1)[-1] if isinstance(k, str) else k: v for k, v in es})),
        min_size=1)))
optimize_value = weighted((6, st.lists(optimize_entry, max_size=3)), (2, st.sampled_from(OPTIMIZATIONS)), (1, value))


def _mapping(entries: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return dict(entries)


config = weighted((4, st.lists(entry, max_size=3).map(_mapping)), (1, st.one_of(
    st.tuples(st.lists(entry, max_size=2).map(_mapping), st.lists(entry, max_size=2).map(_mapping)).map(
        lambda ab: {**ab[0], "config": ab[1]}),
    st.tuples(st.lists(entry, max_size=2).map(_mapping), optimize_value).map(lambda a: {**a[0], "optimize": a[1]}),
    st.tuples(st.lists(entry, max_size=2).map(_mapping), st.sampled_from(PRESETS + [""])).map(
        lambda a: {**a[0], "preset": a[1]}),
    st.tuples(st.lists(entry, max_size=2).map(_mapping), st.one_of(scalar, st.lists(st.sampled_from(OPTIMIZATIONS)))
              ).map(lambda a: {**a[0], "disable": a[1]}))))
sets = st.lists(valid_key.flatmap(lambda k: st.tuples(weighted((4, st.just(k)), (1, _typo(k))), plausible(k).map(str))),
                max_size=3).map(_mapping)
arg_optimize = weighted((6, st.just(())), (3, st.lists(st.sampled_from(OPTIMIZATIONS), max_size=3)), (1, value))
arg_preset = weighted((6, st.none()), (2, st.sampled_from(PRESETS)), (1, scalar))
arg_mapping = weighted((12, config), (1, st.none()), (1, scalar), (1, st.lists(st.text(max_size=8), max_size=2)))
# (model, config, optimize, sets, preset, strict): the arguments of omni.Engine / omni.run
cases = st.tuples(st.sampled_from(MODELS), arg_mapping, arg_optimize,
                  weighted((4, st.none()), (4, sets), (1, arg_mapping)), arg_preset,
                  weighted((8, st.booleans()), (1, scalar)))


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _bounded(seconds: int = 10):
    """A case that runs longer than ``seconds`` raises ``_Hang`` (an alias bomb being expanded)."""
    def alarm(*_):
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(model, cfg, optimize, sets_, preset, strict) -> str:
    """One input through the public Python path up to (not including) loading weights.
    -> "resolved", "refused", or a description of what went wrong."""
    try:
        with _bounded():
            engine = omni.Engine(model, cfg, optimize=optimize, sets=sets_, preset=preset, strict=strict, lazy=True)
    except OmniError:
        return "refused"
    except _Hang:
        return "hang: still running after 10 s"
    except Exception as exc:  # noqa: BLE001 - what the property forbids
        return f"non-omni exception {type(exc).__name__}: {str(exc)[:200]}"
    try:
        json.dumps(engine.load_report.to_dict(), allow_nan=False)
    except (ValueError, TypeError) as exc:
        return f"report is not strict JSON: {exc}"
    return "resolved"


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
@given(cases)
def test_every_config_resolves_or_raises_omni_error(case):
    outcome = check(*case)
    assert outcome in ("resolved", "refused"), (outcome, case)


# ---------------------------------------------------------------------------- YAML texts
_BOMB = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(  # 9**10 leaves once expanded, 500 bytes as text
    b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((98 + i,) * 2 + (97 + i,) * 9) for i in range(9))
HOSTILE_YAML = [
    b"config:\n  " + _BOMB.replace(b"\n", b"\n  ") + b"optimize: *j\n",
    _BOMB.replace(b"a: &a", b"metadata: &a") + b"optimize: [{teacache: {coefficients: *j}}]\n",
    b"optimize: " + b"[" * 2000 + b"]" * 2000 + b"\n",
    b"config: " + b"{a: " * 2000 + b"1" + b"}" * 2000 + b"\n",
    b"a: &a [*a]\n",
    b"enable_vae_tiling: true\nenable_vae_tiling: false\n",
    b"tea_cache_ratio: 0.2\xff\xfe\n",
    b"\x00\x01\x02",
    b"- just\n- a list\n",
    b"vae_tile_size: .inf\n",
    b"first_block_cache.threshold: .nan\n",
]


def yaml_texts() -> st.SearchStrategy[bytes]:
    import yaml

    dumped = config.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode("utf-8"))
    return st.one_of(st.sampled_from(HOSTILE_YAML), dumped, st.binary(max_size=200),
                     st.text(max_size=200).map(lambda t: t.encode("utf-8")))


def check_yaml(text: bytes, folder: str) -> str:
    from omni.config import load_yaml

    path = os.path.join(folder, "fuzz.yaml")
    with open(path, "wb") as fh:
        fh.write(text)
    try:
        with _bounded():
            data = load_yaml(path)
    except OmniError:
        return "refused"
    except _Hang:
        return "hang: still reading after 10 s"
    except Exception as exc:  # noqa: BLE001
        return f"non-omni exception {type(exc).__name__}: {str(exc)[:200]}"
    return check("tiny-flux", data, (), None, None, False)


@settings(max_examples=EXAMPLES // 5, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
@given(text=yaml_texts())
def test_every_yaml_file_resolves_or_raises_omni_error(tmp_path_factory, text):
    folder = str(tmp_path_factory.mktemp("yaml"))
    outcome = check_yaml(text, folder)
    assert outcome in ("resolved", "refused"), (outcome, text[:300])


def test_hostile_yaml_files_fail_fast(tmp_path):
    """Alias bombs, 2,000-deep nesting, self-reference, duplicate keys, non-UTF-8: each a refusal,
    each within a second (an alias bomb expanded before validation would take hours)."""
    import time

    for text in HOSTILE_YAML[:8]:
        t0 = time.perf_counter()
        assert check_yaml(text, str(tmp_path)) == "refused", text[:80]
        assert time.perf_counter() - t0 < 5.0, text[:80]  # generous bound for a loaded 2-core box


# ---------------------------------------------------------------------------- survey mode
def _survey(n: int) -> None:
    """Run ``n`` generated cases (and n/5 YAML texts) and print counts per outcome."""
    from collections import Counter

    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    folder = tempfile.mkdtemp(prefix="omni-fuzz-survey-")

    def record(outcome: str, case: object) -> None:
        kind = outcome.split(":")[0]
        counts[kind] += 1
        examples.setdefault(outcome[:120], repr(case)[:200])

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate])
    @given(cases)
    def configs(case):
        record(check(*case), case)

    @settings(max_examples=max(n // 5, 1), deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate])
    @given(yaml_texts())
    def yamls(text):
        try:
            record(check_yaml(text, folder), text[:100])
        except RecursionError:  # a crash of the harness itself would hide the figures
            record("non-omni exception RecursionError (uncaught)", text[:100])

    configs()
    yamls()
    print(json.dumps({"cases": sum(counts.values()), **counts}, indent=1))
    for outcome, case in examples.items():
        if not outcome.startswith(("resolved", "refused")):
            print(f"- {outcome}\n    {case}")


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    try:
        _survey(int(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        raise
