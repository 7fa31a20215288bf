"""Bad config input (issue 14, "Config"): one line naming the key (a ``ConfigError``, exit 2) or a
report note, never a foreign exception and never silence. In process, no weights load."""

import math
import time

import pytest

import omni
from omni.config import load_yaml, parse_set, resolve_config
from omni.errors import ConfigError, OmniError
from omni.plugins import Selection, get_registry, load_registry
from omni.runtime.report import RunReport


@pytest.fixture(scope="module")
def reg():
    return get_registry()


def refused(reg, data=None, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_config(reg, data, **kw)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize("value", [math.inf, -math.inf, "inf", ".inf", "1e400"])
def test_int_options_refuse_infinity(reg, value):
    assert refused(reg, {"vae_tile_size": value}).startswith("config key vae_tile_size: ")


@pytest.mark.parametrize("value", [math.nan, "nan", "NaN"])
def test_nan_never_passes_a_range_check(reg, value):
    message = refused(reg, {"first_block_cache.threshold": value})
    assert message.startswith("config key first_block_cache.threshold:") and "not a finite number" in message
    assert "finite" in refused(reg, {"mag_cache.mag_ratios": [1.0, value]})


def test_reports_are_strict_json():
    report = RunReport(model="m", family="f")
    report.timings["steps"] = [0.1, math.nan]
    with pytest.raises(OmniError, match=r"non-finite number at report.timings.steps\[1\]"):
        report.to_dict()


@pytest.mark.parametrize("data, start", [
    ({"disable": 5}, "disable must be a list of optimization names, not 5"),
    ({"disable": True}, "disable must be a list of optimization names, not True"),
    ({"optimize": [{"teacache": {1: 2}}]}, "optimize: option name 1 of teacache is not a string"),
    ({"optimize": [{"teacache": 3}]}, "optimize: options of teacache must be a mapping"),
    ({"enable_vae_tilling": {}}, "unknown config key 'enable_vae_tilling' (did you mean enable_vae_tiling"),
    ({"strict": {}}, "config key strict: {} is not a boolean"),
    ({"quantization_backend": "torchao"}, "config key quantization_backend has no effect without quantization"),
])
def test_crashes_and_silences_become_one_line(reg, data, start):
    assert refused(reg, data).startswith(start)


def test_an_empty_section_of_known_keys_is_a_note(reg):
    cfg = resolve_config(reg, {"cache_config": {}})
    assert cfg.requested == {} and any("cache_config is empty" in n for n in cfg.notes)


@pytest.mark.parametrize("data, sets, names", [
    (None, {"tea_cache_ratio": "0.1", "teacache.rel_l1_thresh": "0.9"}, ("tea_cache_ratio", "teacache.rel_l1_thresh")),
    ({"tea_cache_ratio": 0.2, "optimize": [{"teacache": {"rel_l1_thresh": 0.4}}]}, None,
     ("tea_cache_ratio", "optimize: teacache.rel_l1_thresh")),
    ({"tea_cache_ratio": 0.3, "config": {"tea_cache_ratio": 0.2}}, None, ("tea_cache_ratio=0.3", "config.tea_cache_ratio")),
    ({"tea_cache_ratio": 0.3}, {"tea_cache_ratio": "0.5"}, ("tea_cache_ratio=0.3", "--set tea_cache_ratio")),
])
def test_one_option_two_values_names_both_sources(reg, data, sets, names):
    message = refused(reg, data, sets=sets)
    assert "twice with different values" in message and all(n in message for n in names), message


def test_the_same_value_twice_is_fine(reg):
    cfg = resolve_config(reg, {"tea_cache_ratio": 0.3, "enable_tea_cache": True}, sets={"teacache.rel_l1_thresh": "0.3"})
    assert cfg.requested["teacache"]["rel_l1_thresh"] == 0.3


def test_set_twice_and_yaml_duplicate_keys(tmp_path):
    with pytest.raises(ConfigError, match="--set tea_cache_ratio is given twice"):
        parse_set(["tea_cache_ratio=0.1", "tea_cache_ratio=0.9"])
    path = tmp_path / "dup.yaml"
    path.write_text("enable_vae_tiling: true\nvae_tile_size: 64\nenable_vae_tiling: false\n")
    with pytest.raises(ConfigError, match=r"key 'enable_vae_tiling' appears twice \(lines 1 and 3\)"):
        load_yaml(str(path))


def test_an_explicit_false_is_never_overridden(reg):
    assert "turned off by enable_vae_tiling=False" in refused(reg, {"enable_vae_tiling": False},
                                                               optimize=["vae_tiling"])
    assert "strict is given twice" in refused(reg, {"strict": False}, strict=True)
    assert "preset is given twice" in refused(reg, {"preset": "vram-first"}, preset="lossless", family="flux")
    assert refused(reg, preset="").startswith("preset: the name is empty")


def test_a_preset_yields_to_explicit_keys_with_a_note(reg):
    cfg = resolve_config(reg, {"enable_vae_tiling": False}, preset="vram-first", family="flux")
    assert "vae_tiling" not in cfg.requested
    assert any("enable_vae_tiling=True is not used: enable_vae_tiling=False is" in n for n in cfg.notes), cfg.notes


@pytest.mark.parametrize("text, message", [
    (None, "is a folder"),
    (b"tea_cache_ratio: 0.2\xff\xfe\n", "is not UTF-8 text (byte 0xff at offset 20)"),
    (b"optimize: " + b"[" * 2000 + b"]" * 2000 + b"\n", "nests deeper than 32 levels"),
    (b"config: " + b"{a: " * 2000 + b"1" + b"}" * 2000 + b"\n", "nests deeper than 32 levels"),
    (b"a: &a [*a]\n", "refers to itself"),
    (b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((98 + i,) * 2 + (97 + i,) * 9) for i in range(9))
     + b"optimize: *j\n", "expands to more than 10000 values"),
])
def test_unreadable_config_files_fail_fast(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    if text is None:
        path.mkdir()
    else:
        path.write_bytes(text)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_yaml(str(path))
    assert str(info.value).startswith(f"config file {path} ") and message in str(info.value), str(info.value)
    assert time.perf_counter() - t0 < 5  # measured ~0.01 s; expanding the bomb would never finish


def test_python_api_misuse_says_what_is_expected():
    cases = [
        (dict(optimize="teacache"), "optimize must be a list of names, e.g. optimize=['teacache']"),
        (dict(config=["x"]), "config must be a mapping of config keys to values, not list"),
        (dict(config="enable_vae_tiling"), "config must be a mapping of config keys to values, not str"),
        (dict(sets={1: 2}), "sets: key 1 is not a string"),
        (dict(optimize=[3]), "optimize must be a list of names (strings)"),
    ]
    for kwargs, message in cases:
        for call in (lambda: omni.Engine("tiny-flux", lazy=True, **kwargs), lambda: omni.run("tiny-flux", **kwargs)):
            with pytest.raises(ConfigError) as info:
                call()
            assert str(info.value).startswith(message), (kwargs, str(info.value))


def test_did_you_mean_never_suggests_the_key_itself(reg):
    from omni.config import _suggest

    assert "preset" not in _suggest(reg, "preset", ["preset", "presets", "strict"]).replace("presets", "")
    assert "enable_vae_tiling" in refused(reg, {"enable_vae_tilling": True})


def test_a_disabled_owner_is_named_instead_of_neighbours():
    reg = load_registry(selection=Selection(deny=frozenset({"teacache", "flux"})))
    message = refused(reg, optimize=["teacache"])
    assert "plugin teacache" in message and "disabled by OMNI_DISABLE_PLUGINS" in message and "did you mean" not in message
    assert "plugin teacache" in refused(reg, {"tea_cache_ratio": 0.2})
    from omni.resolve import resolve_model

    with pytest.raises(OmniError, match=r"unknown model 'tiny-flux': plugin flux .* disabled by OMNI_DISABLE_PLUGINS"):
        resolve_model("tiny-flux", reg)


def test_echoed_values_are_capped(reg):
    for data in ({"x" * 5000: 1}, {"vae_tile_size": "9" * 5000 + "x"}, {"optimize": [[list(range(10**4))]]}):
        assert len(refused(reg, data)) < 300
