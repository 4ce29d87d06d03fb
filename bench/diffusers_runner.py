#!/usr/bin/env python3
"""diffusers fp16 on an Ebb-style single-file checkpoint, offline, for bench/gpu_vs_diffusers.sh.

Nothing is fetched: the modules are built from the released models' configs written out below
(SD 1.5 and SDXL base 1.0), filled from the file through diffusers' own single-file converters
(loaded strictly), and the CLIP tokenizers are made from the BPE merges Ebb ships
(assets/vocab/clip). Runs `--images` images of batch 1 (euler_a, cfg, steps as given; the
pipeline's default VAE handling, so SDXL's VAE is upcast to f32 as its config says) and prints
one JSON line: the wall time of each image (text encoding + sampling + VAE decode, synchronised)
and torch's peak allocated memory over the images.
"""
import argparse
import gzip
import json
import sys
import time

import torch
from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.loaders import single_file_utils as sfu
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

UNET = {
    "sd1": {"sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8},
    "sdxl": {"sample_size": 128, "block_out_channels": [320, 640, 1280],
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
             "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
             "cross_attention_dim": 2048, "use_linear_projection": True,
             "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
             "projection_class_embeddings_input_dim": 2816},
}
VAE = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "latent_channels": 4,
       "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}
VAE_ARCH = {"sd1": {"sample_size": 512, "scaling_factor": 0.18215},
            "sdxl": {"sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}}
CLIP_L = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
          "num_attention_heads": 12, "projection_dim": 768, "hidden_act": "quick_gelu"}
CLIP_G = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
          "num_attention_heads": 20, "projection_dim": 1280, "hidden_act": "gelu"}
# name -> (checkpoint prefix, config, OpenCLIP layout, with projection)
TEXT = {"sd1": [("cond_stage_model.transformer.", CLIP_L, False, False)],
        "sdxl": [("conditioner.embedders.0.transformer.", CLIP_L, False, False),
                 ("conditioner.embedders.1.model.", CLIP_G, True, True)]}
SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "steps_offset": 1, "timestep_spacing": "leading"}


def strict_load(module, state, what):
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        sys.exit(f"{what}: missing {sorted(result.missing_keys)[:5]}, "
                 f"unexpected {sorted(result.unexpected_keys)[:5]}")


def bytes_to_unicode():
    """GPT-2's byte → printable character table, as CLIP's BPE uses it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tokenizer(bpe_path, pad_token):
    """CLIP's tokenizer from OpenAI's merges file, built as its simple_tokenizer.py does."""
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    byte_chars = bytes_to_unicode()
    words = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    words += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={w: i for i, w in enumerate(words)}, merges=merges,
                         pad_token=pad_token, model_max_length=77)


def text_encoder(checkpoint, prefix, config, open_clip, projection):
    cfg = CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-5,
                         bos_token_id=0, eos_token_id=2, pad_token_id=1, **config)
    model = CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)
    if open_clip:
        state = sfu.convert_open_clip_checkpoint(model, checkpoint, prefix)
    else:
        state = sfu.convert_ldm_clip_checkpoint(checkpoint, remove_prefix=prefix)
        state.pop("text_model.embeddings.position_ids", None)
    if not any(k.startswith("text_model.") for k in model.state_dict()):
        # transformers 5's CLIPTextModel holds the text tower directly, without text_model.
        state = {k.removeprefix("text_model."): v for k, v in state.items()}
    strict_load(model, state, prefix)
    return model


def pipeline(arch, path, bpe):
    checkpoint = load_file(path)
    unet = UNet2DConditionModel(**UNET[arch])
    strict_load(unet, sfu.convert_ldm_unet_checkpoint(checkpoint, dict(unet.config)), "unet")
    vae = AutoencoderKL(**VAE, **VAE_ARCH[arch])
    strict_load(vae, sfu.convert_ldm_vae_checkpoint(checkpoint, dict(vae.config)), "vae")
    encoders = [text_encoder(checkpoint, *spec) for spec in TEXT[arch]]
    scheduler = EulerAncestralDiscreteScheduler(**SCHEDULER)
    if arch == "sd1":
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=encoders[0],
                                       tokenizer=tokenizer(bpe, "<|endoftext|>"), unet=unet,
                                       scheduler=scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    else:
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=encoders[0],
                                         text_encoder_2=encoders[1],
                                         tokenizer=tokenizer(bpe, "<|endoftext|>"),
                                         tokenizer_2=tokenizer(bpe, "!"), unet=unet,
                                         scheduler=scheduler, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cuda", torch.float16)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("arch", choices=sorted(UNET))
    p.add_argument("checkpoint")
    p.add_argument("--bpe", required=True, help="bpe_simple_vocab_16e6.txt.gz")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0)
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--prompt", default="a lighthouse at dusk")
    a = p.parse_args()
    pipe = pipeline(a.arch, a.checkpoint, a.bpe)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(a.images):
        generator = torch.Generator("cuda").manual_seed(i + 1)
        torch.cuda.synchronize()
        start = time.perf_counter()
        pipe(a.prompt, negative_prompt="", height=a.size, width=a.size,
             num_inference_steps=a.steps, guidance_scale=a.cfg, generator=generator,
             output_type="np")
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    print(json.dumps({"arch": a.arch, "size": a.size, "times_s": times,
                      "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30}))


if __name__ == "__main__":
    main()
