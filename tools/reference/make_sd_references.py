#!/usr/bin/env python3
"""Writes tests/data/sd/: reference outputs of diffusers/transformers/k-diffusion on the CPU for
the tiny random-weight SD 1.x, 2.x (768-v) and XL models of ebb-synth, which Ebb's C++ models
are tested against.

    cmake --build build --target ebb-synth
    /opt/refenv/bin/python tools/reference/make_sd_references.py --synth build/ebb-synth

Per architecture it writes
  <arch>-tiny.safetensors             the checkpoint: `ebb-synth <arch> --size tiny --dtype f16
                                      --seed 1`, read by both sides (f16 -> f32 is exact, and
                                      everything here computes in f32);
  <arch>-tiny-references.safetensors  inputs and expected outputs (f32; token ids i32);
and manifest.json describes every tensor: its meaning, how it was computed, its shape.

The diffusers/transformers modules are built from explicit configs (sd_tiny_models.py) and
filled through diffusers' single-file converters with strict loading, so a layout problem in
ebb-synth stops this script with the offending keys. Everything is also computed in float64
from the same inputs; the manifest gives, per tensor, how far the float32 reference is from
that, a floor for the tolerance of any other float32 implementation. Computation is
single-threaded, so the output is the same bytes on every run.
"""
import argparse
import copy
import hashlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import diffusers
import transformers
from safetensors.torch import save_file
from transformers import CLIPTokenizer

import sd_tiny_models as models
import sd_tiny_txt2img as t2i
from make_tokenizer_fixtures import write_vocab_files

ROOT = Path(__file__).resolve().parents[2]
BOS, EOS, WINDOW = 49406, 49407, 77
PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "",
    "a red cube on top of a blue sphere, studio lighting, highly detailed, 8k",
    # Exactly 75 tokens: a full window, <|endoftext|> last and no padding.
    "masterpiece, best quality, ultra detailed, a beautiful woman standing in a field of "
    "sunflowers at golden hour, flowing white dress, wind in her hair, soft rim light, bokeh, "
    "shallow depth of field, 85mm lens, film grain, kodak portra 400, straw hat with a red "
    "ribbon, butterflies, blue sky, snowy distant mountains, rolling hills",
]
TXT2IMG_PROMPT, TXT2IMG_NEGATIVE = 0, 1
CFG_SCALE = 7.0
STEPS = 4
TXT2IMG_SEED = 42
LATENT_SHAPE = (1, 4, 8, 8)
UNET_SEED, VAE_IMAGE_SEED, VAE_LATENT_SEED = 1001, 1002, 1003
UNET_TIMESTEPS = (500, 999)
VAE_IMAGE_SIZE = 32
VAE_LATENT_SHAPE = (1, 4, 16, 16)
# SDXL's size conditioning (original h, w, crop top, left, target h, w): distinct values for the
# UNet evaluation, so that a mixed-up order shows; the tiny image size for text-to-image.
UNET_TIME_IDS = [96.0, 64.0, 8.0, 4.0, 80.0, 48.0]
RUNS = [(name, "discrete") for name in t2i.K_SAMPLERS] + [
    ("lcm", "discrete"), ("ddim_trailing", "discrete"),
    ("dpm++2m", "karras"), ("euler_a", "karras")]

PAD = {"clip_l": EOS, "open_clip_h": 0, "open_clip_g": 0}
# What the UNet's cross-attention context is, per architecture (all windows [1, 77, width]):
#  SD 1.x (FrozenCLIPEmbedder, layer "last"): CLIP-L's last layer after the final layer norm;
#  SD 2.x (FrozenOpenCLIPEmbedder, layer "penultimate"): the output of OpenCLIP-H's next-to-last
#    layer, the last one skipped, then the final layer norm (ln_final);
#  SDXL (layer "hidden" index 11 / "penultimate", no final norm on either): the outputs of both
#    encoders' next-to-last layers, concatenated on the channels, CLIP-L first.
CONTEXT = {"sd1": ("copy", ["clip_l.last_hidden_state"]),
           "sd2": ("copy", ["open_clip_h.penultimate_normed"]),
           "sdxl": ("concat_channels", ["clip_l.penultimate", "open_clip_g.penultimate"])}


class Fixture:
    """Tensors of one references file, each with its manifest entry."""

    def __init__(self):
        self.tensors = {}
        self.entries = {}

    def add(self, name, tensor, meaning):
        if name in self.tensors:
            raise ValueError(f"duplicate tensor {name}")
        self.tensors[name] = tensor.detach().contiguous()
        self.entries[name] = {"dtype": "F32" if tensor.is_floating_point() else "I32",
                              "shape": list(tensor.shape), "meaning": meaning}

    def saved(self):
        return {name: t.to(torch.float32) if t.is_floating_point() else t
                for name, t in self.tensors.items()}

    def annotate_errors(self, exact):
        """Records each float tensor's largest magnitude and its largest distance from the
        same computation in float64 (`exact`, a Fixture)."""
        for name, tensor in self.tensors.items():
            if tensor.is_floating_point():
                reference = exact.tensors[name]
                self.entries[name]["max_abs"] = significant(tensor.abs().max())
                self.entries[name]["f64_max_abs_diff"] = significant(
                    (tensor.double() - reference).abs().max())


def significant(value):
    return float(f"{float(value):.3g}")


def make_tokenizer():
    """transformers 5's CLIPTokenizer (the Rust one; it skips ftfy, which these plain ASCII
    prompts do not need) from the vocabulary Ebb ships."""
    with tempfile.TemporaryDirectory() as tmp:
        write_vocab_files(Path(tmp))
        return CLIPTokenizer(vocab=str(Path(tmp) / "vocab.json"),
                             merges=str(Path(tmp) / "merges.txt"))


def prompt_tokens(tokenizer):
    """Each prompt's tokens, checked against the ids of tests/data/pipeline/clip_tokens.json
    (transformers 4's tokenizer with ftfy) where that fixture has the prompt."""
    recorded = {case["text"]: case["ids"] for case in json.loads(
        (ROOT / "tests/data/pipeline/clip_tokens.json").read_text(encoding="utf-8"))["cases"]}
    tokens = []
    for text in PROMPTS:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) > WINDOW - 2:
            raise SystemExit(f"prompt of {len(ids)} tokens does not fit one window: {text!r}")
        if text in recorded and recorded[text] != ids:
            raise SystemExit(f"tokenizer disagrees with clip_tokens.json on {text!r}")
        tokens.append(ids)
    return tokens


def window(ids, pad):
    padded = [BOS, *ids, EOS] + [pad] * (WINDOW - 2 - len(ids))
    return torch.tensor([padded], dtype=torch.int32)


def encode_prompts(arch, modules, tokens, fixture):
    for index, ids in enumerate(tokens):
        p = f"prompt{index}"
        outputs = {}
        for name in models.TEXT_ENCODERS[arch]:
            encoder = modules[name]
            tower = encoder.text_model if hasattr(encoder, "text_model") else encoder
            input_ids = window(ids, PAD[name])
            out = encoder(input_ids.long(), output_hidden_states=True)
            hidden = out.hidden_states
            results = {
                "last_hidden_state": (out.last_hidden_state,
                                      "last layer's output after the final layer norm"),
                "penultimate": (hidden[-2], "output of the next-to-last layer (hidden_states[-2]), "
                                            "no final layer norm"),
                "penultimate_normed": (tower.final_layer_norm(hidden[-2]),
                                       "the final layer norm applied to the next-to-last layer's "
                                       "output (SD 2.x's context; SD 1.x's with clip skip 2)"),
            }
            if hasattr(out, "text_embeds"):
                results["text_embeds"] = (
                    out.text_embeds, "pooled embedding: the last layer's normed output at the "
                    "first <|endoftext|> (the argmax of the ids), times text_projection (stored "
                    "[width, projection] in the checkpoint, x @ P); SDXL's added condition")
            fixture.add(f"{p}.{name}.ids", input_ids,
                        f"77-token window of prompt {index}: <|startoftext|>, {len(ids)} tokens, "
                        f"<|endoftext|>, padding with {PAD[name]}")
            for kind, (tensor, meaning) in results.items():
                fixture.add(f"{p}.{name}.{kind}", tensor, f"{name}, prompt {index}: {meaning}")
                outputs[f"{name}.{kind}"] = tensor
        op, sources = CONTEXT[arch]
        context = torch.cat([outputs[s] for s in sources], dim=-1)
        fixture.add(f"{p}.context", context,
                    f"UNet cross-attention context of prompt {index}: {op} of {sources}")


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def module_dtype(modules):
    return next(modules["unet"].parameters()).dtype


def unet_conditions(arch, fixture, prompt, time_ids_name):
    conditions = {"encoder_hidden_states": fixture.tensors[f"prompt{prompt}.context"]}
    if arch == "sdxl":
        conditions["added_cond_kwargs"] = {
            "text_embeds": fixture.tensors[f"prompt{prompt}.open_clip_g.text_embeds"],
            "time_ids": fixture.tensors[time_ids_name]}
    return conditions


def evaluate_unet(arch, modules, fixture):
    dtype = module_dtype(modules)
    x = torch.randn(LATENT_SHAPE, generator=seeded(UNET_SEED)).to(dtype)
    fixture.add("unet.x", x, f"UNet input latent: torch.randn({list(LATENT_SHAPE)}) of a CPU "
                             f"generator seeded {UNET_SEED}")
    if arch == "sdxl":
        fixture.add("unet.time_ids", torch.tensor([UNET_TIME_IDS], dtype=dtype),
                    "SDXL added condition time_ids for the UNet evaluation: original height, "
                    "width, crop top, crop left, target height, width (each embedded "
                    "sinusoidally, cos first, to addition_time_embed_dim channels)")
    evaluations = [(t, TXT2IMG_PROMPT, f"unet.t{t}.out") for t in UNET_TIMESTEPS]
    evaluations.append((UNET_TIMESTEPS[0], TXT2IMG_NEGATIVE, f"unet.t{UNET_TIMESTEPS[0]}.uncond.out"))
    for t, prompt, name in evaluations:
        conditions = unet_conditions(arch, fixture, prompt, "unet.time_ids")
        with torch.no_grad():
            out = modules["unet"](x, torch.tensor([float(t)]), **conditions).sample
        extra = (f" and added conditions text_embeds = prompt{prompt}.open_clip_g.text_embeds, "
                 "time_ids = unet.time_ids" if arch == "sdxl" else "")
        fixture.add(name, out, f"UNet output ({models.PREDICTION[arch]}) for unet.x at timestep "
                               f"{t}, context prompt{prompt}.context{extra}; no guidance")


def evaluate_vae(modules, fixture):
    vae = modules["vae"]
    dtype = module_dtype(modules)
    image = torch.rand((1, 3, VAE_IMAGE_SIZE, VAE_IMAGE_SIZE), generator=seeded(VAE_IMAGE_SEED)) * 2 - 1
    image = image.to(dtype)
    z = torch.randn(VAE_LATENT_SHAPE, generator=seeded(VAE_LATENT_SEED)).to(dtype)
    with torch.no_grad():
        moments = vae.encode(image).latent_dist.parameters
        decoded = vae.decode(z).sample
    fixture.add("vae.encode.image", image,
                f"VAE encoder input in [-1, 1]: torch.rand of a CPU generator seeded "
                f"{VAE_IMAGE_SEED}, times 2, minus 1")
    fixture.add("vae.encode.moments", moments,
                "quant_conv(encoder(image)): channels [0, 4) the mean, [4, 8) the log variance "
                "(unclamped; diffusers clamps it to [-30, 20] before use). No scaling factor.")
    fixture.add("vae.decode.z", z, f"VAE decoder input, in the VAE's own latent scale (already "
                                   f"divided by the scaling factor): torch.randn of a CPU "
                                   f"generator seeded {VAE_LATENT_SEED}")
    fixture.add("vae.decode.image", decoded,
                "decoder(post_quant_conv(z)), unclamped (an image is clamp((x + 1) / 2, 0, 1))")


def run_txt2img(arch, modules, fixture):
    dtype = module_dtype(modules)
    if arch == "sdxl":
        size = float(LATENT_SHAPE[-1] * 2)  # the tiny VAE scales by 2
        fixture.add("txt2img.time_ids",
                    torch.tensor([[size, size, 0.0, 0.0, size, size]], dtype=dtype),
                    "SDXL time_ids of every text-to-image run (cond and uncond): the tiny "
                    "image size, no crop")
    cond = unet_conditions(arch, fixture, TXT2IMG_PROMPT, "txt2img.time_ids")
    uncond = unet_conditions(arch, fixture, TXT2IMG_NEGATIVE, "txt2img.time_ids")
    alphas_cumprod = t2i.ldm_alphas_cumprod()
    model = t2i.GuidedUNet(modules["unet"], alphas_cumprod, cond, uncond, CFG_SCALE)
    prediction = models.PREDICTION[arch]
    scale = models.VAE_SCALING[arch]
    noise = None
    for sampler, schedule in RUNS:
        result = t2i.txt2img(sampler, schedule, STEPS, model, prediction, TXT2IMG_SEED,
                             LATENT_SHAPE, dtype)
        if noise is None:
            noise = result["noise"]
            fixture.add("txt2img.noise", noise,
                        f"initial noise of every run: the first torch.randn({list(LATENT_SHAPE)}) "
                        f"of a CPU generator seeded {TXT2IMG_SEED}")
        run = sampler if schedule == "discrete" else f"{sampler}_{schedule}"
        k = sampler in t2i.K_SAMPLERS
        with torch.no_grad():
            image = modules["vae"].decode(result["latent"] / scale).sample
        xs, denoised = result["recorder"].stacked()
        scale_note = ("k-diffusion's scale (x = x0 + sigma * noise)" if k else
                      "diffusers' variance-preserving scale (Ebb's x / sqrt(sigma^2 + 1))")
        fixture.add(f"txt2img.{run}.latent", result["latent"],
                    f"{run}: final latent after {STEPS} steps")
        fixture.add(f"txt2img.{run}.image", image,
                    f"{run}: vae.decode(latent / {scale}), unclamped")
        fixture.add(f"txt2img.{run}.x", xs,
                    f"{run}: the latent at the start of each step, in {scale_note}")
        fixture.add(f"txt2img.{run}.denoised", denoised,
                    f"{run}: each step's estimate of the clean latent "
                    + ("(the guided denoiser's first call of the step)" if k else
                       "(LCM: its boundary-conditioned denoised; DDIM: pred_original_sample)"))
        if k:
            fixture.add(f"txt2img.{run}.sigmas", result["sigmas"],
                        f"{run}: the float32 noise levels walked ({schedule}), ending in 0")
        else:
            fixture.add(f"txt2img.{run}.timesteps", result["timesteps"],
                        f"{run}: the model timestep of each step")


def compute(arch, modules, tokens):
    """Every reference tensor, in the modules' float type."""
    fixture = Fixture()
    with torch.no_grad():
        encode_prompts(arch, modules, tokens, fixture)
    evaluate_unet(arch, modules, fixture)
    evaluate_vae(modules, fixture)
    run_txt2img(arch, modules, fixture)
    return fixture


def to_float64(modules):
    return {name: copy.deepcopy(module).double() for name, module in modules.items()}


def synth_checkpoint(synth, arch, out_dir):
    path = out_dir / f"{arch}-tiny.safetensors"
    command = [synth, arch, "--size", "tiny", "--dtype", "f16", "--seed", "1", "-o", str(path),
               "--overwrite"]
    subprocess.run(command, check=True, capture_output=True)
    data = path.read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    tensors = len([k for k in json.loads(data[8:8 + header_size]) if k != "__metadata__"])
    return {"file": path.name, "bytes": len(data), "tensors": tensors, "dtype": "f16",
            "sha256": hashlib.sha256(data).hexdigest(),
            "command": f"ebb-synth {arch} --size tiny --dtype f16 --seed 1 -o {path.name}"}


def manifest_header():
    return {
        "generator": "tools/reference/make_sd_references.py (with sd_tiny_models.py, "
                     "sd_tiny_txt2img.py)",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__,
                     "k_diffusion": importlib.metadata.version("k-diffusion")},
        "conventions": [
            "Tensors are float32 (token ids int32), shapes outermost first, latents and images "
            "NCHW, text [batch, tokens, channels].",
            "Weights: the f16 checkpoint converted to f32 (exact); all computation in f32 on "
            "the CPU, single-threaded.",
            "Random inputs come from torch CPU generators: torch.Generator().manual_seed(seed), "
            "then torch.randn(shape, generator=g) (Ebb: TorchCpuGenerator).",
            "Per float tensor, max_abs is its largest magnitude and f64_max_abs_diff the largest "
            "distance between it and the same computation in float64 from the same inputs: "
            "the rounding error of one float32 implementation, so a floor for tolerances.",
        ],
        "prompts": PROMPTS,
        "unet_timesteps": list(UNET_TIMESTEPS),
        "schedule": dict(models.SCHEDULE, alphas_cumprod="float64 cumprod of 1 - betas, betas = "
                         "linspace(sqrt(beta_start), sqrt(beta_end), 1000)^2 (LDM; Ebb's "
                         "DiscreteSchedule::scaled_linear); float32 in the diffusers schedulers"),
        "txt2img": {
            "prompt": TXT2IMG_PROMPT, "negative_prompt": TXT2IMG_NEGATIVE,
            "cfg_scale": CFG_SCALE, "steps": STEPS, "seed": TXT2IMG_SEED,
            "latent_shape": list(LATENT_SHAPE),
            "runs": [{"name": s if c == "discrete" else f"{s}_{c}", "sampler": s, "schedule": c}
                     for s, c in RUNS],
            "guidance": "model output (noise or v) = uncond + cfg_scale * (cond - uncond), the "
                        "UNet run at batch 1 on the negative then the positive condition",
            "k_diffusion": "euler, euler_a, heun, dpm2, dpm++2m, dpm++2s_a: k-diffusion's "
                           "sample_* around CompVisDenoiser (epsilon) or CompVisVDenoiser (v) "
                           "of the float64 schedule, unquantized (fractional timesteps, fed to "
                           "the UNet as float32). x starts at noise * sigmas[0]. s_churn 0, "
                           "eta 1, s_noise 1.",
            "diffusers": "ddim_trailing: DDIMScheduler(timestep_spacing='trailing', "
                         "set_alpha_to_one=False, eta 0); lcm: LCMScheduler("
                         "original_inference_steps=50, timestep_scaling=10); both with "
                         "clip_sample=False and the schedule's alphas_cumprod in float32; "
                         "x starts at noise (init_noise_sigma 1).",
            "noise_order": "one generator per run: its first draw is the initial noise, then "
                           "every ancestral draw in the sampler's order (euler_a, dpm++2s_a: "
                           "noise_sampler = torch.randn(latent_shape, generator=g) once per "
                           "step but the last; lcm: the scheduler's randn_tensor with the same "
                           "generator once per step but the last)",
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", default=str(ROOT / "build/ebb-synth"))
    parser.add_argument("--out", default=str(ROOT / "tests/data/sd"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    tokens = prompt_tokens(make_tokenizer())
    manifest = manifest_header()
    manifest["archs"] = {}
    for arch in models.ARCHS:
        checkpoint = synth_checkpoint(args.synth, arch, out_dir)
        try:
            models.check_against_synth_configs(arch, args.synth)
            modules = models.load_tiny(arch, out_dir / checkpoint["file"])
        except models.LayoutError as error:
            sys.exit(f"ebb-synth layout problem: {error}")
        fixture = compute(arch, modules, tokens)
        fixture.annotate_errors(compute(arch, to_float64(modules), tokens))
        references = f"{arch}-tiny-references.safetensors"
        save_file(fixture.saved(), str(out_dir / references))
        op, sources = CONTEXT[arch]
        manifest["archs"][arch] = {
            "checkpoint": checkpoint,
            "references": references,
            "prediction": models.PREDICTION[arch],
            "vae_scaling_factor": models.VAE_SCALING[arch],
            "vae_downscale": 2,
            "context": {"op": op, "sources": sources},
            "text_encoders": {name: {"checkpoint_prefix": prefix, "pad_id": PAD[name],
                                     "open_clip": open_clip}
                              for name, (prefix, _, open_clip, _) in
                              models.TEXT_ENCODERS[arch].items()},
            "configs": models.configs(arch),
            "unused_checkpoint_tensors": sorted(models.UNUSED[arch]),
            "tensors": fixture.entries,
        }
        print(f"{arch}: {len(fixture.tensors)} reference tensors", flush=True)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
