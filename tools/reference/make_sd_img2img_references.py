#!/usr/bin/env python3
"""Writes tests/data/sd/sd1-tiny-img2img.*: image-to-image runs of diffusers'
StableDiffusionImg2ImgPipeline on the tiny SD 1.x checkpoint (tests/data/sd/sd1-tiny.safetensors,
made by make_sd_references.py), on the CPU, which Ebb's img2img is tested against.

    /opt/refenv/bin/python tools/reference/make_sd_img2img_references.py

It writes
  sd1-tiny-img2img-input.png             the init image (16x16 RGB, from a seeded generator);
  sd1-tiny-img2img-references.safetensors  per run: the noised start latent, the final latent
                                         and the decoded image (f32);
  sd1-tiny-img2img.json                  the runs' settings and, per tensor, its meaning, its
                                         largest magnitude and its distance from the same
                                         pipeline run in float64 (the tolerance floor, as in
                                         manifest.json).

The pipeline is used as it is, with one generator per run: diffusers draws the VAE posterior
sample (latent_dist.sample) first, then the noise added at the start sigma, then the ancestral
samplers' noise. Its schedulers get the float64 LDM schedule that Ebb and the txt2img
references use. Draws are float32 whatever the compute type (randn_tensor is patched to draw
float32 and cast), so the float64 run sees the same noise; in float32 that is what randn_tensor
does anyway.
"""
import argparse
import copy
import importlib.metadata
import json
import tempfile
from pathlib import Path

import diffusers
import PIL.Image
import torch
import transformers
from diffusers import (DDIMScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       StableDiffusionImg2ImgPipeline)
from diffusers.models.autoencoders import vae as diffusers_vae
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_img2img as img2img_module
from diffusers.schedulers import scheduling_euler_ancestral_discrete as ancestral_module
from safetensors.torch import save_file
from transformers import CLIPTokenizer

import sd_tiny_models as models
import sd_tiny_txt2img as t2i
from make_tokenizer_fixtures import write_vocab_files

ROOT = Path(__file__).resolve().parents[2]
ARCH = "sd1"
PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE_PROMPT = ""
CFG_SCALE = 7.0
STEPS = 4
SEED = 42
IMAGE_SIZE = 16  # pixels; the tiny VAE downscales by 2, so an 8x8 latent
IMAGE_SEED = 2001
# (run name, Ebb sampler, diffusers scheduler class, strength): 4 * 0.6 -> 2 steps, 4 * 0.75 -> 3,
# 4 * 0.5 -> 2. DDIM (trailing, as the txt2img references) is a sampler in the
# variance-preserving scale, whose noise diffusers adds as sqrt(a) x0 + sqrt(1 - a) noise.
RUNS = [("euler_s0.6", "euler", EulerDiscreteScheduler, 0.6),
        ("euler_a_s0.75", "euler_a", EulerAncestralDiscreteScheduler, 0.75),
        ("ddim_trailing_s0.5", "ddim_trailing", DDIMScheduler, 0.5)]


def float32_randn(shape, generator=None, device=None, dtype=None, layout=None):
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)


diffusers_vae.randn_tensor = float32_randn
img2img_module.randn_tensor = float32_randn
ancestral_module.randn_tensor = float32_randn


def init_image():
    """A smooth colour gradient with seeded noise on top, so that every pixel differs."""
    g = torch.Generator().manual_seed(IMAGE_SEED)
    ramp = torch.linspace(0, 1, IMAGE_SIZE)
    base = torch.stack([ramp[None, :].expand(IMAGE_SIZE, -1), ramp[:, None].expand(-1, IMAGE_SIZE),
                        1 - ramp[None, :].expand(IMAGE_SIZE, -1)], dim=-1)
    noisy = (base * 200 + torch.rand((IMAGE_SIZE, IMAGE_SIZE, 3), generator=g) * 55).round()
    return PIL.Image.fromarray(noisy.to(torch.uint8).numpy(), mode="RGB")


def tokenizer():
    with tempfile.TemporaryDirectory() as tmp:
        write_vocab_files(Path(tmp))
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                             model_max_length=77)


def make_scheduler(scheduler_class, dtype):
    """The Euler schedulers compute their sigmas from alphas_cumprod in float64 numpy; DDIM
    steps with alphas_cumprod in the compute type, as sd_tiny_txt2img.py sets it up."""
    if scheduler_class is DDIMScheduler:
        return t2i.diffusers_scheduler("ddim_trailing", models.PREDICTION[ARCH],
                                       t2i.ldm_alphas_cumprod(), dtype)
    scheduler = scheduler_class(**models.SCHEDULE, prediction_type=models.PREDICTION[ARCH])
    scheduler.alphas_cumprod = t2i.ldm_alphas_cumprod()
    return scheduler


def pipeline(modules, scheduler_class, dtype):
    scheduler = make_scheduler(scheduler_class, dtype)
    pipe = StableDiffusionImg2ImgPipeline(
        vae=modules["vae"], text_encoder=modules["clip_l"], tokenizer=tokenizer(),
        unet=modules["unet"], scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dtype)


def run(modules, image, scheduler_class, strength, dtype):
    """The start latent (noised init latent), the final latent and the decoded image."""
    pipe = pipeline(modules, scheduler_class, dtype)
    starts = []
    original_prepare = pipe.prepare_latents

    def prepare_latents(*args, **kwargs):
        latents = original_prepare(*args, **kwargs)
        starts.append(latents.clone())
        return latents

    pipe.prepare_latents = prepare_latents
    with torch.no_grad():
        latent = pipe(PROMPT, image=image, strength=strength, num_inference_steps=STEPS,
                      guidance_scale=CFG_SCALE, negative_prompt=NEGATIVE_PROMPT,
                      generator=torch.Generator().manual_seed(SEED), output_type="latent",
                      ).images
        decoded = pipe.vae.decode(latent / pipe.vae.config.scaling_factor).sample
    return {"start": starts[0], "latent": latent, "image": decoded,
            "timesteps": pipe.scheduler.timesteps.to(torch.float32)}


def significant(value):
    return float(f"{float(value):.3g}")


MEANINGS = {
    "start": "the latent the sampler starts from: scaling_factor * latent_dist.sample() of the "
             "init image, noised with the second draw by scheduler.add_noise at the start "
             "timestep (Euler: x0 + sigma * noise; DDIM: in the variance-preserving scale)",
    "latent": "the final latent (output_type='latent'), in the sampler's scale",
    "image": "vae.decode(latent / scaling_factor), unclamped",
    "timesteps": "the scheduler's full plan of model timesteps for STEPS steps (float32); the "
                 "run starts at index STEPS - int(STEPS * strength)",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "tests/data/sd"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_dir = Path(args.out)
    checkpoint = out_dir / json.loads((out_dir / "manifest.json").read_text())["archs"][ARCH][
        "checkpoint"]["file"]
    modules = models.load_tiny(ARCH, checkpoint)
    modules64 = {name: copy.deepcopy(m).double() for name, m in modules.items()}

    image = init_image()
    image_file = f"{ARCH}-tiny-img2img-input.png"
    image.save(out_dir / image_file)
    image = PIL.Image.open(out_dir / image_file)  # what Ebb reads: the PNG as written

    tensors, entries = {}, {}
    for name, sampler, scheduler_class, strength in RUNS:
        result = run(modules, image, scheduler_class, strength, torch.float32)
        # transformers 4's CLIP builds its causal mask in the default type.
        torch.set_default_dtype(torch.float64)
        exact = run(modules64, image, scheduler_class, strength, torch.float64)
        torch.set_default_dtype(torch.float32)
        for kind, tensor in result.items():
            key = f"img2img.{name}.{kind}"
            tensors[key] = tensor.contiguous()
            entries[key] = {"shape": list(tensor.shape), "meaning": MEANINGS[kind],
                            "max_abs": significant(tensor.abs().max()),
                            "f64_max_abs_diff": significant(
                                (tensor.double() - exact[kind]).abs().max())}
        print(f"{name}: starts at timestep {result['timesteps'][STEPS - int(STEPS * strength)]}")

    references = f"{ARCH}-tiny-img2img-references.safetensors"
    save_file(tensors, str(out_dir / references))
    manifest = {
        "generator": "tools/reference/make_sd_img2img_references.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__,
                     "numpy": importlib.metadata.version("numpy")},
        "checkpoint": checkpoint.name,
        "init_image": image_file,
        "references": references,
        "prompt": PROMPT, "negative_prompt": NEGATIVE_PROMPT, "cfg_scale": CFG_SCALE,
        "steps": STEPS, "seed": SEED,
        "pipeline": "StableDiffusionImg2ImgPipeline (batch-2 guidance), safety checker off, "
                    "schedulers with the float64 LDM alphas_cumprod, the CPU, one thread",
        "runs": [{"name": name, "sampler": sampler, "scheduler": cls.__name__,
                  "strength": strength} for name, sampler, cls, strength in RUNS],
        "tolerance": "|Ebb - ref| <= 10 * f64_max_abs_diff + 1e-6, as manifest.json",
        "tensors": entries,
    }
    (out_dir / f"{ARCH}-tiny-img2img.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
