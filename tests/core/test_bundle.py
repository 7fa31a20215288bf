"""Every bundled plugin folder is listed in bundle.txt and installed."""

import importlib.metadata as md
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(p for base in ("plugins", "model_registry") for p in (ROOT / base).glob("*/") if p.is_dir()
                 and not p.name.startswith((".", "_")))


def _dist_name(folder: Path) -> str:
    text = (folder / "pyproject.toml").read_text()
    return re.search(r'^name\s*=\s*"([^"]+)"', text, re.M).group(1)


def test_bundle_lists_every_folder():
    listed = {re.sub(r"\[.*\]$", "", line.split()[-1]).rstrip("/") for line in (ROOT / "bundle.txt").read_text().splitlines()
              if line.startswith("-e ")}
    missing = [str(f.relative_to(ROOT)) for f in FOLDERS if str(f.relative_to(ROOT)) not in listed]
    assert not missing, f"add to bundle.txt: {missing}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_folder_is_installed_and_registers_in_group_omni(folder):
    dist = _dist_name(folder)
    assert dist.startswith(("omni-plugin-", "omni-family-", "omni-model-")), dist
    try:
        installed = md.distribution(dist)
    except md.PackageNotFoundError:
        pytest.fail(f"{dist} ({folder.name}) is not installed: pip install -r bundle.txt")
    assert [ep for ep in installed.entry_points if ep.group == "omni"], f"{dist} has no entry point in group 'omni'"
