"""Train the shapes model on CPU, reproducibly (seeded), with step-based schedules.

    python -m omni_model_shapes.train [--out DIR] [--vae-steps 1900] [--steps 3600] [--threads 2]

Recipe (the weights card, weights/README.md, has the figures): an AutoencoderKL with 16 latent
channels and downsampling 8 (64x64 image -> 16 packed tokens), trained first (L1 + MSE + 1e-5 KL);
then a stock FluxTransformer2DModel (2 double + 4 single blocks, inner dim 128) trained jointly with
tiny CLIP and T5 encoders with the rectified-flow objective FluxPipeline's
FlowMatchEulerDiscreteScheduler samples with (x_s = (1-s) x0 + s e, target v = e - x0, timestep s,
s = 3u/(1+2u) with u logit-normal), 10 % caption dropout, AdamW, EMA. Budget on 2 CPU cores:
about 6 min (VAE) + 1 min (latents) + 20 min (transformer). A progress bar reports the loss.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

SEED = 20261122
LATENT_CHANNELS = 16
T5_LEN = 16


def build_tokenizers():
    from omni import tiny

    from omni_model_shapes.data import corpus

    words = corpus()
    return tiny.clip_tokenizer(words), tiny.t5_tokenizer(words)


def build_models(clip_tok, t5_tok):
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(SEED)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, block_out_channels=(16, 32, 64, 64),
        layers_per_block=1, norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * LATENT_CHANNELS, num_layers=2, num_single_layers=4, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=64, pooled_projection_dim=64, guidance_embeds=False,
        axes_dims_rope=(8, 12, 12))
    with torch.no_grad():  # DiT-style init: zero the adaLN modulations and the output projection
        for name, module in transformer.named_modules():
            if name.endswith(("norm1.linear", "norm1_context.linear", "norm.linear", "norm_out.linear")) or \
                    name == "proj_out":
                torch.nn.init.zeros_(module.weight)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(clip_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=64, bos_token_id=clip_tok.bos_token_id,
        eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id))
    t5 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tok), d_model=64, d_kv=32, d_ff=128, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    return vae, transformer, clip, t5


def _to_tensor(images):
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _lr(step: int, total: int, warmup: int, base: float, decay_from: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    start = int(total * decay_from)
    if step < start:
        return base
    t = (step - start) / max(total - start, 1)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train_vae(vae, steps: int, rng: random.Random, log) -> dict:
    import torch

    from omni_model_shapes.data import TRIPLES, batch

    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    for step in log(range(steps), "vae"):
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, 50, 1e-3, 0.0)
        x = _to_tensor(batch(rng, 8, TRIPLES)[0])
        post = vae.encode(x).latent_dist
        z = post.sample()
        rec = vae.decode(z).sample
        kl = post.kl().mean() / z[0].numel()
        loss = (rec - x).abs().mean() + ((rec - x) ** 2).mean() + 1e-5 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        log.loss(float(loss))
    vae.eval()
    with torch.no_grad():
        x = _to_tensor(batch(random.Random(SEED + 1), 64, TRIPLES)[0])
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample
        mse = float(((rec.clamp(-1, 1) - x) ** 2).mean() / 4)
    return {"steps": steps, "val_psnr_db": round(10 * math.log10(1 / mse), 2)}


def encode_latents(vae, n: int, rng: random.Random, log):
    import torch

    from omni_model_shapes.data import batch

    latents, captions = [], []
    with torch.no_grad():
        for _ in log(range(n // 64), "latents"):
            images, caps = batch(rng, 64)
            latents.append(vae.encode(_to_tensor(images)).latent_dist.sample())
            captions.extend(caps)
    z = torch.cat(latents)
    shift, scale = float(z.mean()), float(1.0 / z.std())
    vae.register_to_config(shift_factor=shift, scaling_factor=scale)
    return (z - shift) * scale, captions


def train_transformer(transformer, clip, t5, clip_tok, t5_tok, latents, captions, steps: int, rng, log) -> dict:
    import copy

    import torch
    from diffusers import FluxPipeline

    modules = [transformer, clip, t5]
    for m in modules:
        m.train()
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    ema = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]
    gen = torch.Generator().manual_seed(SEED)
    img_ids = FluxPipeline._prepare_latent_image_ids(64, 4, 4, "cpu", torch.float32)
    txt_ids = torch.zeros(T5_LEN, 3)
    bsz = 64
    for step in log(range(steps), "transformer"):
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, 200, 1e-3, 0.75)
        idx = torch.randint(0, latents.shape[0], (bsz,), generator=gen)
        x0 = latents[idx]
        caps = ["" if rng.random() < 0.1 else captions[i] for i in idx.tolist()]
        clip_ids = clip_tok(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        t5_ids = t5_tok(caps, padding="max_length", max_length=T5_LEN, truncation=True, return_tensors="pt").input_ids
        pooled = clip(clip_ids, output_hidden_states=False).pooler_output
        prompt_embeds = t5(t5_ids, output_hidden_states=False)[0]
        u = torch.sigmoid(torch.randn(bsz, generator=gen))
        uniform = torch.rand(bsz, generator=gen)
        u = torch.where(torch.rand(bsz, generator=gen) < 0.1, uniform, u)
        sigma = 3 * u / (1 + 2 * u)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1)
        xs = (1 - s) * x0 + s * noise
        packed = FluxPipeline._pack_latents(xs, bsz, LATENT_CHANNELS, 8, 8)
        target = FluxPipeline._pack_latents(noise - x0, bsz, LATENT_CHANNELS, 8, 8)
        pred = transformer(hidden_states=packed, timestep=sigma, pooled_projections=pooled,
                           encoder_hidden_states=prompt_embeds, txt_ids=txt_ids, img_ids=img_ids,
                           return_dict=False)[0]
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for live, avg in zip(modules, ema):
                for p_avg, p in zip(avg.parameters(), live.parameters()):
                    p_avg.lerp_(p, 1 - decay)
        log.loss(float(loss))
    return {"steps": steps, "batch": bsz, "final_loss": log.last, "modules": ema}


class _Log:
    """A rich progress bar with the running loss (falls back to plain lines without a TTY)."""

    def __init__(self) -> None:
        self.last = float("nan")
        self._avg: float | None = None

    def loss(self, value: float) -> None:
        self.last = value
        self._avg = value if self._avg is None else 0.98 * self._avg + 0.02 * value

    def __call__(self, iterable, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        items = list(iterable)
        with Progress(TextColumn(f"{label:12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[loss]}")) as bar:
            task = bar.add_task(label, total=len(items), loss="")
            for i, item in enumerate(items):
                yield item
                if self._avg is not None:
                    bar.update(task, advance=1, loss=f"loss {self._avg:.4f}")
                else:
                    bar.update(task, advance=1)
        self._avg = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the omni 'shapes' model on CPU.")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "weights")
    parser.add_argument("--vae-steps", type=int, default=1900)
    parser.add_argument("--steps", type=int, default=3600, help="transformer steps at batch 64")
    parser.add_argument("--latents", type=int, default=16000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    from omni.sdk import quiet_libraries

    quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    log = _Log()
    t0 = time.time()
    clip_tok, t5_tok = build_tokenizers()
    vae, transformer, clip, t5 = build_models(clip_tok, t5_tok)
    vae_info = train_vae(vae, args.vae_steps, rng, log)
    t_vae = time.time() - t0
    latents, captions = encode_latents(vae, args.latents, rng, log)
    t_lat = time.time() - t0 - t_vae
    tr_info = train_transformer(transformer, clip, t5, clip_tok, t5_tok, latents, captions, args.steps, rng, log)
    t_tr = time.time() - t0 - t_vae - t_lat
    ema_transformer, ema_clip, ema_t5 = tr_info.pop("modules")
    pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False, shift=3.0), vae=vae,
                        text_encoder=ema_clip, tokenizer=clip_tok, text_encoder_2=ema_t5, tokenizer_2=t5_tok,
                        transformer=ema_transformer)
    args.out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(args.out, safe_serialization=True)
    info = {
        "seed": SEED, "threads": args.threads, "vae": vae_info, "transformer": tr_info,
        "latents": args.latents, "seconds": {"vae": round(t_vae), "latents": round(t_lat), "transformer": round(t_tr)},
        "params": {"transformer": sum(p.numel() for p in ema_transformer.parameters()),
                   "vae": sum(p.numel() for p in vae.parameters()),
                   "text_encoder": sum(p.numel() for p in ema_clip.parameters()),
                   "text_encoder_2": sum(p.numel() for p in ema_t5.parameters())},
    }
    (args.out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
