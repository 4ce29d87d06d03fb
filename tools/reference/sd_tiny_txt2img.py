"""Text-to-image sampling on the tiny diffusers UNet, the way Ebb's samplers are specified:
k-diffusion's samplers around CompVisDenoiser / CompVisVDenoiser, and diffusers' DDIM
("trailing") and LCM schedulers, with classifier-free guidance on the model output.

Every run draws from one torch CPU generator: the initial noise first, then each ancestral
draw (euler_a, dpm++2s_a, lcm: one latent-sized torch.randn per step but the last), in the order
the sampler asks, so a torch-compatible generator replays the run. Draws are float32 whatever
the compute type, so a float64 run sees the same noise.
"""
import torch
from diffusers import DDIMScheduler, LCMScheduler
from diffusers.schedulers import scheduling_lcm
from k_diffusion import external, sampling

from sd_tiny_models import SCHEDULE

K_SAMPLERS = {
    "euler": sampling.sample_euler,
    "euler_a": sampling.sample_euler_ancestral,
    "heun": sampling.sample_heun,
    "dpm2": sampling.sample_dpm_2,
    "dpm++2m": sampling.sample_dpmpp_2m,
    "dpm++2s_a": sampling.sample_dpmpp_2s_ancestral,
}
ANCESTRAL = {"euler_a", "dpm++2s_a"}


def ldm_alphas_cumprod():
    """SD's "scaled_linear" schedule in float64, as CompVis LDM and Ebb's DiscreteSchedule
    compute it (diffusers' own is a float32 cumprod)."""
    betas = torch.linspace(SCHEDULE["beta_start"] ** 0.5, SCHEDULE["beta_end"] ** 0.5,
                           SCHEDULE["num_train_timesteps"], dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


class GuidedUNet(torch.nn.Module):
    """The UNet's output (noise or v) under classifier-free guidance:
    uncond + scale * (cond - uncond), the two conditions evaluated one after the other at
    batch 1. `apply_model` and `alphas_cumprod` are what k-diffusion's CompVis wrappers use."""

    def __init__(self, unet, alphas_cumprod, cond, uncond, scale):
        super().__init__()
        self.unet = unet
        self.alphas_cumprod = alphas_cumprod
        self.cond = cond
        self.uncond = uncond
        self.scale = scale

    def forward(self, x, t):
        t = torch.as_tensor(t).to(torch.float32).reshape(1)
        uncond = self.unet(x, t, **self.uncond).sample
        cond = self.unet(x, t, **self.cond).sample
        return uncond + self.scale * (cond - uncond)

    def apply_model(self, x, t, cond):
        """The CompVis signature; the conditions are bound at construction, so cond is None."""
        return self(x, t)


class Recorder:
    """The latent at the start of each step and the step's estimate of the clean latent."""

    def __init__(self):
        self.x = []
        self.denoised = []

    def add(self, x, denoised):
        self.x.append(x.detach().clone())
        self.denoised.append(denoised.detach().clone())

    def stacked(self):
        return torch.stack(self.x), torch.stack(self.denoised)


def k_sigmas(denoiser, schedule, steps, dtype):
    """The noise levels a k-diffusion sampler walks ("discrete": k-diffusion's get_sigmas;
    "karras": rho 7 over the model's sigma range), in the compute type."""
    if schedule == "discrete":
        sigmas = denoiser.get_sigmas(steps)
    else:
        sigmas = sampling.get_sigmas_karras(steps, denoiser.sigma_min.item(),
                                            denoiser.sigma_max.item(), rho=7.0)
    return sigmas.to(dtype)


def draw(shape, generator, dtype):
    return torch.randn(shape, generator=generator).to(dtype)


# LCM's noise. For float32 this is what the scheduler's own randn_tensor does on the CPU.
scheduling_lcm.randn_tensor = lambda shape, generator, device, dtype: draw(shape, generator, dtype)


def run_k_diffusion(sampler, schedule, steps, model, prediction, noise, generator):
    wrapper = external.CompVisDenoiser if prediction == "epsilon" else external.CompVisVDenoiser
    denoiser = wrapper(model)
    sigmas = k_sigmas(denoiser, schedule, steps, noise.dtype)
    x = noise * sigmas[0]
    recorder = Recorder()
    kwargs = {}
    if sampler in ANCESTRAL:
        kwargs["noise_sampler"] = lambda sigma, sigma_next: draw(x.shape, generator, x.dtype)
    out = K_SAMPLERS[sampler](denoiser, x, sigmas, extra_args={"cond": None}, disable=True,
                              callback=lambda info: recorder.add(info["x"], info["denoised"]),
                              **kwargs)
    return {"latent": out, "sigmas": sigmas, "recorder": recorder}


def diffusers_scheduler(sampler, prediction, alphas_cumprod, dtype):
    config = dict(SCHEDULE, clip_sample=False, prediction_type=prediction)
    if sampler == "ddim_trailing":
        # SD's configs ship set_alpha_to_one=False: the last step lands on alphas_cumprod[0].
        scheduler = DDIMScheduler(**config, set_alpha_to_one=False, timestep_spacing="trailing")
    else:
        scheduler = LCMScheduler(**config, original_inference_steps=50, timestep_scaling=10.0)
    # The exact schedule that the k-diffusion runs and Ebb use, rounded to the compute type.
    scheduler.alphas_cumprod = alphas_cumprod.to(dtype)
    scheduler.final_alpha_cumprod = scheduler.alphas_cumprod[0]
    return scheduler


def run_diffusers(sampler, schedule, steps, model, prediction, noise, generator):
    """`schedule` is unused: these samplers walk their own timesteps."""
    scheduler = diffusers_scheduler(sampler, prediction, model.alphas_cumprod, noise.dtype)
    scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma
    recorder = Recorder()
    for t in scheduler.timesteps:
        output = model(scheduler.scale_model_input(x, t), t)
        kwargs = {"generator": generator} if sampler == "lcm" else {"eta": 0.0}
        result = scheduler.step(output, t, x, **kwargs)
        estimate = result.denoised if sampler == "lcm" else result.pred_original_sample
        recorder.add(x, estimate)
        x = result.prev_sample
    return {"latent": x, "timesteps": scheduler.timesteps.to(torch.int32), "recorder": recorder}


def txt2img(sampler, schedule, steps, model, prediction, seed, latent_shape, dtype):
    """Runs one sampler from torch.randn(latent_shape) of a fresh generator seeded with seed."""
    generator = torch.Generator().manual_seed(seed)
    noise = draw(latent_shape, generator, dtype)
    run = run_k_diffusion if sampler in K_SAMPLERS else run_diffusers
    with torch.no_grad():
        result = run(sampler, schedule, steps, model, prediction, noise, generator)
    result["noise"] = noise
    return result
