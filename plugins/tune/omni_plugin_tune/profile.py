"""The profile ``omni tune`` writes: a config file that ``omni run --config`` and ``omni serve
--config`` accept unchanged (``optimize:`` only), with everything else under the config surface's
ignored ``metadata:`` key — the device, versions, date, prompts, the measured figures and every trial,
so a later run with the same inputs reuses them (one JSON line per trial: the config reader limits
how many values a file may hold)."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from omni.sdk import UsageError
from omni_plugin_tune.trials import Trial

TOOL = "omni tune"


def read(path: str) -> dict[str, Any] | None:
    """The profile at ``path``, None when there is none; a file that is not an omni tune profile is
    refused (never overwritten)."""
    if not os.path.exists(path):
        return None
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--output {path}: exists and cannot be read as YAML ({type(exc).__name__}); "
                         "choose another file") from None
    meta = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("tool") != TOOL:
        raise UsageError(f"--output {path}: exists and is not an omni tune profile; choose another file")
    return data


def recorded(data: dict[str, Any] | None, signature: str) -> tuple[dict[str, Trial], str | None]:
    """Trials recorded in a profile measured with the same inputs (keyed by candidate), and a note
    when the profile's inputs differ."""
    if data is None:
        return {}, None
    meta = data["metadata"]
    if meta.get("inputs", {}).get("signature") != signature:
        return {}, "the existing profile was measured with other inputs (model, sizes, prompts, device or " \
                   "versions): measuring again"
    trials = {}
    for line in meta.get("trials", []):
        try:
            trial = Trial.from_json(json.loads(line))
        except (TypeError, ValueError):
            continue  # a hand-edited line is measured again
        trials[trial.key] = trial
    return trials, None


def recorded_comparison(data: dict[str, Any] | None, signature: str) -> dict[str, Any] | None:
    """The side-by-side timing recorded in a profile measured with the same inputs:
    ``{"keys": [candidate keys], "rounds": n, "seconds": [[...] per finalist]}``."""
    if data is None or data["metadata"].get("inputs", {}).get("signature") != signature:
        return None
    try:
        side = json.loads(data["metadata"].get("side_by_side") or "null")
    except (TypeError, ValueError):
        return None
    return side if isinstance(side, dict) and {"keys", "rounds", "seconds"} <= set(side) else None


def write(path: str, config: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Write the profile whole, then rename (an interrupted write leaves the old file)."""
    import yaml

    meta = {"tool": TOOL, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **metadata}
    # one JSON line per trial keeps the file small for the config reader (it counts every YAML value)
    meta["trials"] = [json.dumps(t, sort_keys=True, default=str) for t in meta.get("trials", [])]
    if meta.get("side_by_side") is not None:
        meta["side_by_side"] = json.dumps(meta["side_by_side"], default=str)
    body = json.loads(json.dumps({**config, "metadata": meta}, default=str))  # plain types only
    header = (f"# omni tune profile for {metadata.get('model')}: "
              f"omni run {metadata.get('model')} --config {os.path.basename(path)}\n"
              "# (omni serve accepts it too). Everything under metadata: is ignored by the config; it records\n"
              "# what was measured, on which device, and is reused by omni tune when the inputs match.\n")
    tmp = f"{path}.partial"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(header)
        yaml.safe_dump(body, fh, sort_keys=False, default_flow_style=None, width=120)
    os.replace(tmp, path)
