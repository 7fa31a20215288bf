"""Our promise: every supported cell of the matrix is proven by a real run on a tiny model.

Collected from the installed declarations, so a new ``supported`` claim adds a test here.
"""

import pytest

from omni.environment import Environment
from omni.plugins import Selection, load_registry
from omni.specs import Support
from omni.verify import Verifier, cells_to_verify

REGISTRY = load_registry(selection=Selection(), strict=False)
CELLS = cells_to_verify(REGISTRY, Environment.detect())


@pytest.fixture(scope="module")
def verifier():
    return Verifier(REGISTRY)


def test_there_are_supported_cells_to_verify():
    assert CELLS, "no supported cells declared"


@pytest.mark.parametrize("cell", CELLS, ids=[f"{c.model}-{c.task or 'base'}-{c.optimization}" for c in CELLS])
def test_supported_cell_is_verified(verifier, cell):
    if cell.status is not Support.SUPPORTED:
        pytest.skip(f"{cell.optimization} is {cell.status.value} in this environment")
    result = verifier.verify(cell.model, cell.optimization, cell.status, task=cell.task)
    if result.status == "unavailable":  # the tiny model lacks a component this task's pipeline needs
        pytest.skip(result.reason)
    assert result.status == "pass", result
