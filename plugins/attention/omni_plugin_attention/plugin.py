"""Declarations only (no torch import).

diffusers routes a denoiser's attention through one dispatcher (``dispatch_attention_fn``) whose
kernel ``module.set_attention_backend(name)`` chooses. What each kernel needs differs, and the matrix
can only say ``unavailable`` per optimization, so the kernels are grouped by need into optimizations of
one exclusive group (a run picks one kernel); each has a ``backend`` option for its variants:

| optimization | backends | needs |
|---|---|---|
| ``attention_backend`` | native, _native_math, _native_flash, _native_efficient, flex | torch (CPU: all but _native_efficient) |
| ``attention_cudnn`` | _native_cudnn | CUDA, compute capability >= 8.0 |
| ``attention_flash`` | flash, flash_varlen | flash-attn >= 2.6.3, CUDA >= 8.0 |
| ``attention_flash3`` | _flash_3, _flash_varlen_3 | flash-attn-3 (built from source), CUDA >= 9.0 |
| ``attention_sage`` | sage, sage_varlen | sageattention >= 2.1.1, CUDA >= 8.0 |
| ``attention_xformers`` | xformers | xformers >= 0.0.29, CUDA |

The ``*_hub`` backends (kernels downloaded from the Hugging Face Hub by the ``kernels`` package at
first use) are not offered: omni runs offline. UNet families and SD3 use attention processors that
call torch's SDPA directly (``AttnProcessor2_0``, ``JointAttnProcessor2_0``), so the choice would change
nothing there: their cells are ``unsupported`` with that reason. The config key ``attention_backend:
NAME`` selects whichever optimization offers NAME.
"""

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported, unsupported

GROUP = "attention"
VERIFIED = ("flux", "wan", "ltx", "qwenimage")
_DIRECT = ("{proc} calls torch's scaled_dot_product_attention directly, not diffusers' attention dispatcher: "
           "set_attention_backend changes nothing")
NOT_DISPATCHED = {"sd15": _DIRECT.format(proc="AttnProcessor2_0"), "sdxl": _DIRECT.format(proc="AttnProcessor2_0"),
                  "sd3": _DIRECT.format(proc="JointAttnProcessor2_0")}
_GPU = Needs(accelerator=True, min_compute_capability=(8, 0))

# name -> (backends, needs, summary, PSNR floor for omni verify, verified families)
KERNELS = {
    "attention_backend": (("native", "_native_math", "_native_flash", "_native_efficient", "flex"),
                          Needs(packages=("torch>=2.5",)),
                          "torch's own attention kernels: SDPA's dispatcher (native), or one SDPA kernel (math, flash, "
                          "memory-efficient), or flex attention", 40.0, VERIFIED),
    "attention_cudnn": (("_native_cudnn",), _GPU, "torch SDPA's cuDNN attention kernel (CUDA)", 35.0, ()),
    "attention_flash": (("flash", "flash_varlen"), Needs(packages=("flash-attn>=2.6.3",), accelerator=True,
                                                         min_compute_capability=(8, 0)),
                        "FlashAttention 2 (flash-attn)", 35.0, ()),
    "attention_flash3": (("_flash_3", "_flash_varlen_3"), Needs(packages=("flash-attn-3",), accelerator=True,
                                                                min_compute_capability=(9, 0)),
                         "FlashAttention 3 (Hopper; flash-attn-3 built from source)", 35.0, ()),
    "attention_sage": (("sage", "sage_varlen"), Needs(packages=("sageattention>=2.1.1",), accelerator=True,
                                                      min_compute_capability=(8, 0)),
                       "SageAttention (int8 Q/K): lossy", 25.0, ()),
    "attention_xformers": (("xformers",), Needs(packages=("xformers>=0.0.29",), accelerator=True),
                           "xformers memory-efficient attention", 35.0, ()),
}


@hookimpl
def omni_register_optimizations():
    for name, (backends, needs, summary, psnr, verified) in KERNELS.items():
        claims = {family: unsupported(reason) for family, reason in NOT_DISPATCHED.items()}
        proof = "_native_math" if name == "attention_backend" else backends[0]
        claims.update({family: supported(f"verified: omni verify (backend {proof}, tiny model)") for family in verified})
        yield OptimizationSpec(
            name=name,
            stage=Stage.PLACE,
            summary=f"attention kernel of the denoiser: {summary} (diffusers set_attention_backend)",
            lossless=False,  # same function, other rounding (bf16 kernels differ visibly from SDPA)
            tolerance_psnr=psnr,
            impl=f"omni_plugin_attention.impl:{name}",
            options=(Option("backend", "choice", backends[0], "diffusers attention backend name",
                            choices=backends),),
            config_keys=(ConfigKey("attention_backend", when=backends, value_option="backend"),),
            claims=claims,
            exclusive_group=GROUP,
            needs=needs,
            order=30,
            verify_overrides={"backend": "_native_math"} if name == "attention_backend" else {},
        )
