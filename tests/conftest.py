import pytest

pytest_plugins = ["omni.testing.fixtures"]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is present."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA accelerator")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
