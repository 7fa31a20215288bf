"""The quantization schemes as plain data (no torch import): shared by the declarations and the code.

Schemes that run on any host are options of ``torchao`` / ``torchao_load``. The two that need GPU
hardware are separate optimizations with their own :class:`omni.sdk.Needs`, so the matrix shows
them ``unavailable`` with the reason on hosts that lack it (availability is per optimization).
"""

from __future__ import annotations

# scheme -> what it stores / computes (used in option help and the README)
CPU_SCHEMES: dict[str, str] = {
    "int8_weight_only": "int8 weights with per-row scales; matmuls in the compute dtype",
    "int8_dynamic": "int8 weights and per-token dynamically quantized int8 activations (W8A8)",
    "fp8_weight_only": "float8_e4m3fn weights with per-row scales, dequantized for the matmul (slower on CPU)",
    "nf4": "4-bit NormalFloat weights with block-wise scales (block = group_size)",
    "intx4_weight_only": "int4 values with per-group scales, stored unpacked in int8 bytes (no saving over int8)",
}

# schemes that need hardware -> the optimization that provides them
HARDWARE_SCHEMES: dict[str, str] = {
    "fp8_dynamic": "torchao_fp8_dynamic",
    "int4_weight_only": "torchao_int4_weight_only",
}

ALL_SCHEMES = tuple(CPU_SCHEMES) + tuple(HARDWARE_SCHEMES)

# seed config (OmniRT): `quantization: int8|fp8|nf4` + `quantization_backend: torchao` -> weight-only schemes
SEED_VALUE_MAP = {"int8": "int8_weight_only", "fp8": "fp8_weight_only", "nf4": "nf4"}
# no quantization_backend (vLLM-Omni style): `quantization: int8` is W8A8 (int8 dynamic); `fp8` selects
# torchao_fp8_dynamic (W8A8 on compute capability >= 8.9); nf4 keeps the seed meaning
VLLM_VALUE_MAP = {"int8": "int8_dynamic", "nf4": "nf4"}
