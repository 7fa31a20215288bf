"""Reading config input safely: a YAML file (``--config``), ``--set KEY=VALUE`` pairs, and the shape
check that every config mapping passes before anything walks it.

A config file is refused with one line, before it is turned into Python objects, when it cannot be
read (a folder, not UTF-8, over 1 MiB), is not YAML, nests deeper than ``MAX_DEPTH``, expands to
more than ``MAX_NODES`` values through aliases (PyYAML shares an aliased node when it constructs,
but everything that walks the result — flattening, error messages, the JSON report — would expand
it: a 500-byte "billion laughs" file is 3.4e9 values), refers to itself, or repeats a key (YAML
keeps the last one silently).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from omni.errors import ConfigError
from omni.options import shown

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 10_000


def shape(root: Any, children: Callable[[Any], Iterable[Any]], where: str) -> None:
    """Refuse ``root`` when it nests deeper than ``MAX_DEPTH``, refers to itself, or has more than
    ``MAX_NODES`` values once shared parts are counted every time they appear. Iterative, and each
    shared node is measured once, so a bomb is measured in time linear in its text."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, list[Any], Iterator[Any]]] = []

    def enter(node: Any) -> None:
        if id(node) in on_path:
            raise ConfigError(f"{where} refers to itself (a recursive alias)")
        kids = list(children(node))
        on_path.add(id(node))
        stack.append((node, kids, iter(kids)))

    enter(root)
    while stack:
        node, kids, it = stack[-1]
        child = next(it, _END)
        if child is _END:
            stack.pop()
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            depth[id(node)] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[id(node)] > MAX_NODES:
                raise ConfigError(f"{where} expands to more than {MAX_NODES} values (aliases that repeat "
                                  "aliases?); write the values out")
            if depth[id(node)] > MAX_DEPTH:
                raise ConfigError(f"{where} nests deeper than {MAX_DEPTH} levels")
        elif id(child) not in size:
            enter(child)


_END = object()


def python_children(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        return [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple)):
        return value
    return ()


def _node_children(node: Any) -> Iterable[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return ()


def _event_depth(text: str, path: str) -> None:
    """Nesting depth from the parser's events (the composer recurses per level; this does not)."""
    import yaml

    level = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            level += 1
            if level > MAX_DEPTH:
                raise ConfigError(f"config file {path} nests deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            level -= 1


def _duplicate_keys(node: Any, path: str) -> None:
    import yaml

    seen_nodes: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[Any, int] = {}
            for k, _ in current.value:
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    line = k.start_mark.line + 1
                    if k.value in first:
                        raise ConfigError(f"config file {path}: key {shown(k.value)} appears twice (lines "
                                          f"{first[k.value]} and {line}); give it once")
                    first[k.value] = line
        stack.extend(_node_children(current))


def _read_text(path: str) -> str:
    if os.path.isdir(path):
        raise ConfigError(f"config file {path} is a folder; name a YAML file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_BYTES // 2**20} MiB; a config is a few keys")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start})") from None


def load_yaml(path: str) -> dict[str, Any]:
    """The mapping in a YAML config file; every problem is one ``ConfigError`` line naming the file."""
    import yaml

    text = _read_text(path)
    try:
        _event_depth(text, path)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return {}
            shape(node, _node_children, f"config file {path}")
            _duplicate_keys(node, path)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}`` (values stay strings; options coerce them).
    The same key twice with different values is refused (the config's one-value rule)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {shown(item)}")
        if key in out and out[key] != value:
            raise ConfigError(f"--set {key} is given twice with different values: {shown(out[key])} and "
                              f"{shown(value)}; give it once")
        out[key] = value
    return out
