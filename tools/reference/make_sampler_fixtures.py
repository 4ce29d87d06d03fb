#!/usr/bin/env python3
"""Writes tests/data/samplers/sampler_fixtures.json: goldens for src/pipeline/schedule and
src/pipeline/samplers, computed with k-diffusion (schedules, denoiser wrappers, k-diffusion
samplers) and diffusers (DDIMScheduler "trailing", LCMScheduler).

Run with the reference environment (torch, k-diffusion, diffusers):
    /opt/refenv/bin/python tools/reference/make_sampler_fixtures.py

The model is an analytic toy denoiser, the same in the C++ test:
    D(x, sigma) = tanh(A * x / sqrt(1 + sigma^2) + B * sigma)   (elementwise)
It is non-linear in x and in sigma, so a sampler that calls it at the wrong sigma or in the
wrong order gives a different result. Ancestral noise comes from a bank of pre-drawn tensors
handed out in order, so the C++ side can replay the same stream.

Every sampler runs twice: in float64 (the mathematical answer) and in float32 (what torch
computes on latents of that type).
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
import diffusers
import k_diffusion
from diffusers import DDIMScheduler, LCMScheduler
from k_diffusion import external, sampling

TOY_A = 0.9
TOY_B = 0.05
# Toy UNet for the eps / v wrappers: F(x_in, t) = tanh(WRAP_A * x_in + WRAP_B * t).
WRAP_A = 0.7
WRAP_B = 0.002
LATENT_SHAPE = (2, 4, 8, 8)
NOISE_BANK = 10
TRAIN_TIMESTEPS = 1000
BETA_START = 0.00085
BETA_END = 0.012
SEED = 20240611

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "samplers" / "sampler_fixtures.json"


def ldm_alphas_cumprod():
    """SD's 'scaled_linear' schedule, computed in float64 as the CompVis LDM code does."""
    betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


class DummyCompVisModel(torch.nn.Module):
    """Just enough of a CompVis LatentDiffusion for CompVisDenoiser / CompVisVDenoiser."""

    def __init__(self, alphas_cumprod):
        super().__init__()
        self.alphas_cumprod = alphas_cumprod

    def apply_model(self, x, t, cond=None):
        return torch.tanh(WRAP_A * x + WRAP_B * t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype))


def toy_denoiser(x, sigma):
    sigma = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
    return torch.tanh(TOY_A * x / torch.sqrt(1 + sigma**2) + TOY_B * sigma)


class NoiseBank:
    """Hands out the pre-drawn noise tensors in order; counts the draws."""

    def __init__(self, bank, dtype):
        self.bank = bank
        self.dtype = dtype
        self.drawn = 0

    def next(self):
        noise = self.bank[self.drawn].to(self.dtype).clone()
        self.drawn += 1
        return noise

    def sampler(self, sigma, sigma_next):
        return self.next()


def as_list(t, dtype):
    values = t.detach().cpu().reshape(-1).tolist()
    if dtype == torch.float32:
        # Shortest text that reads back as the same float32.
        return [float(np.format_float_positional(np.float32(v), unique=True)) for v in values]
    return values


def schedule_fixtures(compvis):
    sigmas = []
    for steps in (1, 2, 3, 4, 7, 10, 20, 50):
        sigmas.append({"schedule": "discrete", "steps": steps, "sigmas": compvis.get_sigmas(steps).tolist()})
        smin, smax = compvis.sigma_min.item(), compvis.sigma_max.item()
        sigmas.append({"schedule": "karras", "steps": steps,
                       "sigmas": sampling.get_sigmas_karras(steps, smin, smax, rho=7.0).tolist()})
        sigmas.append({"schedule": "exponential", "steps": steps,
                       "sigmas": sampling.get_sigmas_exponential(steps, smin, smax).tolist()})
    probe_sigmas = torch.tensor([0.001, 0.0292, 0.03, 0.1, 0.5, 1.0, 2.5, 7.0, 14.0, 14.6146, 20.0],
                                dtype=torch.float64)
    probe_ts = torch.tensor([0.0, 0.25, 1.0, 17.5, 250.0, 499.5, 998.75, 999.0], dtype=torch.float64)
    return {
        "sigmas": sigmas,
        "sigma_to_t": [[s, compvis.sigma_to_t(torch.tensor([s], dtype=torch.float64)).item()]
                       for s in probe_sigmas.tolist()],
        "t_to_sigma": [[t, compvis.t_to_sigma(torch.tensor([t], dtype=torch.float64)).item()]
                       for t in probe_ts.tolist()],
    }


def wrapper_fixtures(model):
    x = torch.linspace(-3.0, 3.0, 16, dtype=torch.float64).reshape(1, 16)
    cases = []
    for prediction, wrapper in (("epsilon", external.CompVisDenoiser(model)),
                                ("v", external.CompVisVDenoiser(model))):
        for sigma in (0.01, 0.0292, 0.3, 1.0, 5.5, 14.6146, 30.0):
            s = torch.tensor([sigma], dtype=torch.float64)
            out = wrapper(x, s, cond=None)
            cases.append({"prediction": prediction, "sigma": sigma, "x": x.reshape(-1).tolist(),
                          "denoised": out.reshape(-1).tolist()})
    return cases


def run_k_diffusion(name, fn, sigmas, initial_noise, bank, dtype):
    sigmas = sigmas.to(dtype)
    x = initial_noise.to(dtype) * sigmas[0]
    noise = NoiseBank(bank, dtype)
    model = lambda x, sigma: toy_denoiser(x, sigma)
    if name in ("euler_a", "dpm++2s_a"):
        out = fn(model, x, sigmas, disable=True, noise_sampler=noise.sampler)
    else:
        out = fn(model, x, sigmas, disable=True)
    return out, noise.drawn


def toy_model_output(prediction, sample, alpha_prod_t):
    """The eps or v a discrete-time model would output if its denoiser were the toy."""
    sigma = torch.sqrt((1 - alpha_prod_t) / alpha_prod_t)
    x_ve = sample / torch.sqrt(alpha_prod_t)
    denoised = toy_denoiser(x_ve, sigma.reshape(1))
    eps = (x_ve - denoised) / sigma
    if prediction == "epsilon":
        return eps
    return torch.sqrt(alpha_prod_t) * eps - torch.sqrt(1 - alpha_prod_t) * denoised


def sd_scheduler_config(prediction):
    return dict(num_train_timesteps=TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END,
                beta_schedule="scaled_linear", clip_sample=False,
                prediction_type="epsilon" if prediction == "epsilon" else "v_prediction")


def run_diffusers(name, steps, prediction, alphas_cumprod, initial_noise, bank, dtype):
    if name == "ddim_trailing":
        # SD 1.x/2.x/XL ship set_alpha_to_one=False: the last DDIM step lands on alphas_cumprod[0].
        scheduler = DDIMScheduler(**sd_scheduler_config(prediction), set_alpha_to_one=False,
                                  timestep_spacing="trailing")
    else:
        scheduler = LCMScheduler(**sd_scheduler_config(prediction), original_inference_steps=50,
                                 timestep_scaling=10.0)
    # The schedule under test is the exact one; diffusers' own is a float32 cumprod.
    scheduler.alphas_cumprod = alphas_cumprod.to(dtype)
    scheduler.final_alpha_cumprod = scheduler.alphas_cumprod[0]
    scheduler.set_timesteps(steps)
    noise = NoiseBank(bank, dtype)
    diffusers.schedulers.scheduling_lcm.randn_tensor = lambda shape, **kw: noise.next()
    sample = initial_noise.to(dtype).clone()  # init_noise_sigma is 1 for both schedulers
    for t in scheduler.timesteps.tolist():
        output = toy_model_output(prediction, sample, scheduler.alphas_cumprod[t])
        sample = scheduler.step(output, int(t), sample).prev_sample
    return sample, noise.drawn, scheduler.timesteps.tolist()


def main():
    torch.manual_seed(SEED)
    initial_noise = torch.randn(LATENT_SHAPE, dtype=torch.float64)
    bank = torch.randn((NOISE_BANK, *LATENT_SHAPE), dtype=torch.float64)

    alphas_cumprod = ldm_alphas_cumprod()
    model = DummyCompVisModel(alphas_cumprod)
    compvis = external.CompVisDenoiser(model)
    diffusers_alphas = DDIMScheduler(**sd_scheduler_config("epsilon")).alphas_cumprod

    k_samplers = {
        "euler": sampling.sample_euler,
        "euler_a": sampling.sample_euler_ancestral,
        "heun": sampling.sample_heun,
        "dpm2": sampling.sample_dpm_2,
        "dpm++2m": sampling.sample_dpmpp_2m,
        "dpm++2s_a": sampling.sample_dpmpp_2s_ancestral,
    }
    smin, smax = compvis.sigma_min.item(), compvis.sigma_max.item()
    k_cases = [
        ("karras", 6, lambda: sampling.get_sigmas_karras(6, smin, smax, rho=7.0)),
        ("discrete", 4, lambda: compvis.get_sigmas(4)),
        ("exponential", 9, lambda: sampling.get_sigmas_exponential(9, smin, smax)),
    ]
    runs = []
    for name, fn in k_samplers.items():
        for schedule, steps, make_sigmas in k_cases:
            sigmas = make_sigmas().to(torch.float64)
            for dtype in (torch.float64, torch.float32):
                out, drawn = run_k_diffusion(name, fn, sigmas, initial_noise, bank, dtype)
                runs.append({"sampler": name, "schedule": schedule, "steps": steps,
                             "dtype": str(dtype).removeprefix("torch."),
                             "sigmas": sigmas.tolist(), "noise_draws": drawn,
                             "result": as_list(out, dtype)})

    timesteps = {}
    for name, step_counts in (("ddim_trailing", (1, 3, 4, 7)), ("lcm", (1, 4, 6))):
        for steps in step_counts:
            for prediction in ("epsilon", "v"):
                for dtype in (torch.float64, torch.float32):
                    out, drawn, ts = run_diffusers(name, steps, prediction, alphas_cumprod,
                                                   initial_noise, bank, dtype)
                    timesteps[f"{name}/{steps}"] = ts
                    runs.append({"sampler": name, "steps": steps, "prediction": prediction,
                                 "dtype": str(dtype).removeprefix("torch."),
                                 "noise_draws": drawn, "result": as_list(out, dtype)})

    fixture = {
        "generator": "tools/reference/make_sampler_fixtures.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "k_diffusion": getattr(k_diffusion, "__version__", "unknown")},
        "toy": {"a": TOY_A, "b": TOY_B, "wrap_a": WRAP_A, "wrap_b": WRAP_B},
        "alphas_cumprod": alphas_cumprod.tolist(),
        "diffusers_alphas_cumprod_f32": as_list(diffusers_alphas, torch.float32),
        "schedules": schedule_fixtures(compvis),
        "denoiser_wrappers": wrapper_fixtures(model),
        "timesteps": timesteps,
        "latent": {"shape": list(LATENT_SHAPE), "initial_noise": initial_noise.reshape(-1).tolist(),
                   "noise_bank": [b.reshape(-1).tolist() for b in bank]},
        "runs": runs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(runs)} runs)")


if __name__ == "__main__":
    main()
