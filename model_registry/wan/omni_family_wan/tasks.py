"""Which tasks a loaded Wan model can run through another pipeline class (``FamilySpec.task_check``).

WanImageToVideoPipeline (diffusers 0.42.1, ``prepare_latents``) feeds the transformer either the noise latents
concatenated with a frame mask (``vae_scale_factor_temporal`` channels) and the image's latents — ``2 * z_dim + 4``
input channels, the Wan2.1 / Wan2.2-A14B I2V checkpoints — or, with ``expand_timesteps`` (Wan2.2 TI2V-5B), the
image latents mixed into the first latent frame (``z_dim`` channels: the text-to-video transformer itself). A
text-to-video Wan2.1 / A14B transformer takes ``z_dim`` channels without ``expand_timesteps``: the pipeline builds
from its components, then fails on the first denoiser call. A transformer with ``image_dim`` (Wan2.1 I2V) also
needs the CLIP ``image_encoder`` and ``image_processor``. The other way round, an image-to-video transformer
cannot serve WanPipeline or WanVideoToVideoPipeline, which feed it the noise latents alone."""

from __future__ import annotations

from typing import Any


def task_check(task: str, pipe: Any) -> str | None:
    transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
    z_dim = pipe.vae.config.z_dim
    takes = transformer.config.in_channels
    if task != "i2v":  # text- and video-to-video feed the noise latents alone
        return None if takes == z_dim else (f"its transformer takes {takes} input channels (an image-to-video "
                                            f"model), {task} feeds it the {z_dim} latent channels alone")
    if pipe.config.get("expand_timesteps"):
        return None if takes == z_dim else (f"with expand_timesteps the transformer must take the {z_dim} latent "
                                            f"channels, not {takes}")
    needs = 2 * z_dim + pipe.vae_scale_factor_temporal
    if takes != needs:
        return (f"its transformer takes {takes} input channels, image-to-video needs {needs} (noise, frame mask "
                f"and image latents): load a Wan image-to-video checkpoint (Wan2.1-I2V, Wan2.2-I2V) or Wan2.2-TI2V")
    if transformer.config.image_dim is not None and (pipe.image_encoder is None or pipe.image_processor is None):
        return "its transformer takes CLIP image embeddings, and the model has no image_encoder / image_processor"
    return None
