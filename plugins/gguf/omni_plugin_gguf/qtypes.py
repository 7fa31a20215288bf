"""GGUF tensor types as plain data (no gguf / numpy import): what ``omni convert`` can write."""

from __future__ import annotations

# types gguf-py can quantize to in numpy (and diffusers can load); the Linear weights get this type
WRITABLE = ("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "BF16", "F16")
K_QUANTS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K")
K_QUANT_NOTE = ("K-quants (Q2_K..Q6_K) cannot be written: gguf-py has no K-quant quantizer (llama.cpp's C "
                "tools make them); omni loads K-quant files written elsewhere.")
