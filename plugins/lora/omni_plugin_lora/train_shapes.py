"""Train the shipped ``shapes-teal`` LoRA on CPU, reproducibly (seeded).

    python -m omni_plugin_lora.train_shapes [--steps 1000] [--threads 1] [--out FILE]

Needs omni-model-shapes (``pip install -e 'plugins/lora[train]'``) and peft (a dependency of this
plugin). The base model stays frozen; peft LoRA layers (rank 8) are trained on the transformer only:
every Linear of the double and single blocks, the text-token projection (``context_embedder``) and the
pooled-text embedder. The text encoders stay frozen: transformers 5.24 loads text-encoder LoRA only
with peft >= 0.22, which the package index does not have (see the plugin README). Data: teal scenes
(:mod:`.teal`, 21 training triples) mixed half and half with the base model's own training scenes, so
the adapter adds a colour without forgetting the others; the rectified-flow objective and timestep
sampling of ``omni_model_shapes.train``; 10 % caption dropout (the empty prompt stays the CFG
reference). The file is written with diffusers' ``save_lora_weights`` (peft format + LoRA metadata)
plus omni's metadata (``omni.family``, ``omni.base_model``) and a JSON record next to it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

SEED = 20261130
_BLOCK_LAYERS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
                 "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp", "proj_out",
                 "norm1.linear", "norm1_context.linear", "norm.linear")
# a peft regex (full match on the module path)
TRANSFORMER_TARGETS = (r"(single_)?transformer_blocks\.\d+\.(attn\.)?(" + "|".join(l.replace(".", r"\.") for l in _BLOCK_LAYERS)
                       + r")|context_embedder|time_text_embed\.text_embedder\.linear_[12]")
DEFAULT_OUT = Path(__file__).resolve().parent / "adapters" / "shapes-teal.safetensors"


def _scenes(rng: random.Random, n: int, triples: list[tuple[str, str, str]], colours: dict):
    from omni_model_shapes.data import caption, render

    import numpy as np

    picks = [rng.choice(triples) for _ in range(n)]
    return np.stack([render(*t, rng, colours=colours) for t in picks]), [caption(*t) for t in picks]


def encode(vae, rng: random.Random, n: int, triples: list[tuple[str, str, str]], colours: dict):
    """``n`` scenes -> scaled VAE latents and captions."""
    import torch

    from omni_model_shapes.train import _to_tensor

    latents, captions = [], []
    with torch.no_grad():
        for _ in range(n // 64):
            images, caps = _scenes(rng, 64, triples, colours)
            latents.append(vae.encode(_to_tensor(images)).latent_dist.sample())
            captions.extend(caps)
    z = torch.cat(latents)
    return (z - vae.config.shift_factor) * vae.config.scaling_factor, captions


def train(pipe, steps: int, batch: int, lr: float, rng: random.Random, log) -> dict:
    import torch
    from diffusers import FluxPipeline
    from peft import LoraConfig

    from omni_model_shapes.data import TRAIN_TRIPLES
    from omni_model_shapes.train import LATENT_CHANNELS, T5_LEN, _lr

    from omni_plugin_lora import teal

    colours = teal.palette()
    t0 = time.time()
    teal_z, teal_caps = encode(pipe.vae, rng, 2048, teal.train_triples(), colours)
    base_z, base_caps = encode(pipe.vae, rng, 2048, TRAIN_TRIPLES, colours)
    encode_s = time.time() - t0
    transformer, clip, t5 = pipe.transformer, pipe.text_encoder, pipe.text_encoder_2
    for module in (transformer, clip, t5, pipe.vae):
        module.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights="gaussian",
                                       target_modules=TRANSFORMER_TARGETS))
    params = [p for p in transformer.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    with torch.no_grad():  # the text encoders are frozen: embed every caption once
        vocab = sorted(set(teal_caps) | set(base_caps) | {""})
        ids = pipe.tokenizer_2(vocab, padding="max_length", max_length=T5_LEN, truncation=True,
                               return_tensors="pt").input_ids
        t5_embeds = dict(zip(vocab, t5(ids, output_hidden_states=False)[0]))
        ids = pipe.tokenizer(vocab, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        clip_embeds = dict(zip(vocab, clip(ids, output_hidden_states=False).pooler_output))
    gen = torch.Generator().manual_seed(SEED)
    img_ids = FluxPipeline._prepare_latent_image_ids(64, 4, 4, "cpu", torch.float32)
    txt_ids = torch.zeros(T5_LEN, 3)
    transformer.train()
    half = batch // 2
    for step in log(range(steps), "lora"):
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, 50, lr, 0.6)
        ti = torch.randint(0, teal_z.shape[0], (half,), generator=gen)
        bi = torch.randint(0, base_z.shape[0], (batch - half,), generator=gen)
        x0 = torch.cat([teal_z[ti], base_z[bi]])
        caps = [teal_caps[i] for i in ti.tolist()] + [base_caps[i] for i in bi.tolist()]
        caps = ["" if rng.random() < 0.1 else c for c in caps]
        pooled = torch.stack([clip_embeds[c] for c in caps])
        prompt_embeds = torch.stack([t5_embeds[c] for c in caps])
        u = torch.sigmoid(torch.randn(batch, generator=gen))
        u = torch.where(torch.rand(batch, generator=gen) < 0.1, torch.rand(batch, generator=gen), u)
        sigma = 3 * u / (1 + 2 * u)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1)
        packed = FluxPipeline._pack_latents((1 - s) * x0 + s * noise, batch, LATENT_CHANNELS, 8, 8)
        target = FluxPipeline._pack_latents(noise - x0, batch, LATENT_CHANNELS, 8, 8)
        pred = transformer(hidden_states=packed, timestep=sigma, pooled_projections=pooled,
                           encoder_hidden_states=prompt_embeds, txt_ids=txt_ids, img_ids=img_ids,
                           return_dict=False)[0]
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        log.loss(loss.item())
        if step % 100 == 99:
            print(f"step {step + 1}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    transformer.eval()
    return {"steps": steps, "batch": batch, "lr": lr, "final_loss": round(log.last, 4), "latents": {"teal": 2048, "base": 2048},
            "encode_seconds": round(encode_s), "trainable_params": sum(p.numel() for p in params)}


def save(pipe, out: Path, info: dict) -> None:
    """diffusers' LoRA file (peft keys, LoRA metadata) with omni's metadata added, and a JSON record."""
    from diffusers import FluxPipeline

    from omni_plugin_lora.verify import write_adapter

    write_adapter(FluxPipeline, "transformer", pipe.transformer, out,
                  {"omni.family": "flux", "omni.base_model": "shapes", "omni.concept": "teal"})
    out.chmod(0o644)
    info["file_bytes"] = out.stat().st_size
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the shapes-teal LoRA on CPU.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch
    from diffusers import FluxPipeline

    from omni.sdk import quiet_libraries
    from omni_model_shapes import weights_dir
    from omni_model_shapes.train import _Log

    quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    t0 = time.time()
    pipe = FluxPipeline.from_pretrained(weights_dir())
    info = {"seed": SEED, "threads": args.threads, "base_model": "shapes",
            "transformer": {"rank": 8, "alpha": 8, "targets": TRANSFORMER_TARGETS}}
    info.update(train(pipe, args.steps, args.batch, args.lr, random.Random(SEED), _Log()))
    info["seconds"] = round(time.time() - t0)
    save(pipe, args.out, info)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
