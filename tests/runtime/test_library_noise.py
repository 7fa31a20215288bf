"""The Python API keeps the libraries' import-time noise (torchao's missing GPU kernels, torch pytree
deprecations, diffusers' torchao warning) out of the output, as the CLI does."""

import os
import subprocess
import sys

import pytest

from omni.noise import NOISY_LOGGERS

RUN = "import omni; omni.run('tiny-flux', num_inference_steps=1)"
NOISE = ("Failed to load", "_pytree", "Unable to import `torchao`")


def _stderr(**env):
    proc = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_python_api_prints_no_library_import_noise():
    loud = _stderr(OMNI_LIBRARY_WARNINGS="1")
    if not any(n in loud for n in NOISE):
        pytest.skip("the libraries on this host make no import-time noise to hide")
    quiet = _stderr(OMNI_LIBRARY_WARNINGS="")
    assert not [n for n in NOISE if n in quiet], quiet[-2000:]


def test_a_logger_the_caller_configured_is_left_alone():
    code = ("import logging; logging.getLogger('torchao').setLevel(logging.INFO); import omni; "
            f"print(logging.getLogger('torchao').level, logging.getLogger({NOISY_LOGGERS[1]!r}).level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMNI_LIBRARY_WARNINGS": ""}).stdout.split()
    assert out == ["20", "40"]
