"""The config surface: shapes, mapping through plugin-declared keys, presets, errors."""

import pytest

from omni.config import load_yaml, parse_set, resolve_config
from omni.errors import ConfigError


def test_flat_nested_and_optimize_forms(registry):
    cfg = resolve_config(registry, {"config": {"enable_scale": True}, "scale_factor": "0.25"})
    assert cfg.requested == {"scale_noise": {"factor": 0.25}}
    cfg = resolve_config(registry, {"optimize": ["cache_one", {"scale_noise": {"factor": 2}}]})
    assert cfg.requested == {"cache_one": {}, "scale_noise": {"factor": 2.0}}
    cfg = resolve_config(registry, None, optimize=["cache_one,cache_two"], sets={"scale_noise.factor": "3"})
    assert list(cfg.requested) == ["cache_one", "cache_two"]
    assert any("factor set for scale_noise, which was not requested" in n for n in cfg.notes)


def test_enable_false_requests_nothing(registry):
    assert resolve_config(registry, {"enable_scale": "false"}).requested == {}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"enable_scael": True}, "unknown config key 'enable_scael' (did you mean enable_scale"),
        ({"enable_scale": "maybe"}, "config key enable_scale: 'maybe' is not a boolean"),
        ({"optimize": ["cache_tree"]}, "unknown optimization 'cache_tree' (did you mean cache_two"),
        ({"scale_noise.factr": 1}, "config key scale_noise.factr: scale_noise has no option 'factr'"),
        ({"optimize": 3}, "optimize must be a list"),
        ({"preset": "vram-frist"}, "unknown preset 'vram-frist' (did you mean vram-first"),
    ],
)
def test_errors_name_the_key(registry, data, message):
    with pytest.raises(ConfigError) as info:
        resolve_config(registry, data)
    assert str(info.value).startswith(message), str(info.value)


def test_set_and_yaml_parsing(tmp_path):
    assert parse_set(["a=1", "b.c = x"]) == {"a": "1", "b.c": "x"}
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
        parse_set(["novalue"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("config: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_yaml(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(str(tmp_path / "missing.yaml"))
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_yaml(str(lst))


def test_preset_keys_without_plugins_become_notes(registry):
    cfg = resolve_config(registry, {"preset": "throughput-first"})
    assert cfg.preset == "throughput-first"
    for key in ("channels_last", "fuse_qkv"):
        provided = any(ck.key == key for d in registry.optimizations.values() for ck in d.spec.config_keys)
        assert provided or any(f"key {key} skipped" in n for n in cfg.notes)
