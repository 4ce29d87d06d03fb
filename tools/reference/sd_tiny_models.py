"""The tiny Stable Diffusion models of ebb-synth as diffusers/transformers modules.

The configs below restate tools/synth/synth_config.cpp's tiny sizes as diffusers/transformers
config keys, written out independently of ebb-synth's own config.json writer
(tools/synth/diffusers_configs.cpp), which `check_against_synth_configs` compares them with:
a head count, say, changes no tensor shape, so only two independent statements catch it.

`load_tiny` fills the modules from one ebb-synth single-file checkpoint through diffusers' own
single-file converters, loading strictly, and accounts for every tensor of the file.
"""
import json
import subprocess
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

ARCHS = ("sd1", "sd2", "sdxl")

SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
            "beta_schedule": "scaled_linear"}
PREDICTION = {"sd1": "epsilon", "sd2": "v_prediction", "sdxl": "epsilon"}  # SD2: 768-v
VAE_SCALING = {"sd1": 0.18215, "sd2": 0.18215, "sdxl": 0.13025}


def text_encoder_config(hidden_act):
    return {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 37,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77,
            "projection_dim": 32, "hidden_act": hidden_act, "layer_norm_eps": 1e-5,
            "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}


def unet_config(arch):
    config = {"in_channels": 4, "out_channels": 4, "block_out_channels": [32, 64],
              "layers_per_block": 1, "down_block_types": ["CrossAttnDownBlock2D"] * 2,
              "up_block_types": ["CrossAttnUpBlock2D"] * 2, "transformer_layers_per_block": [1, 1],
              "attention_head_dim": 2, "cross_attention_dim": 32, "use_linear_projection": False,
              "norm_num_groups": 32, "norm_eps": 1e-5, "flip_sin_to_cos": True, "freq_shift": 0,
              "sample_size": 16}
    if arch in ("sd2", "sdxl"):
        config.update(attention_head_dim=[32 // 8, 64 // 8], use_linear_projection=True)
    if arch == "sdxl":
        config.update(down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                      up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
                      transformer_layers_per_block=[1, 2], cross_attention_dim=32 + 32,
                      addition_embed_type="text_time", addition_time_embed_dim=8,
                      projection_class_embeddings_input_dim=32 + 6 * 8)
    return config


def vae_config(arch):
    return {"in_channels": 3, "out_channels": 3, "block_out_channels": [32, 64],
            "down_block_types": ["DownEncoderBlock2D"] * 2,
            "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1,
            "latent_channels": 4, "norm_num_groups": 32, "sample_size": 32,
            "scaling_factor": VAE_SCALING[arch]}


# Text encoders per architecture: name -> (checkpoint prefix, hidden_act, OpenCLIP layout,
# with projection). SD2 and SDXL's bigG are OpenCLIP towers; SDXL's bigG keeps its projection
# (the pooled embedding conditions the UNet).
TEXT_ENCODERS = {
    "sd1": {"clip_l": ("cond_stage_model.transformer.", "quick_gelu", False, False)},
    "sd2": {"open_clip_h": ("cond_stage_model.model.", "gelu", True, False)},
    "sdxl": {"clip_l": ("conditioner.embedders.0.transformer.", "quick_gelu", False, False),
             "open_clip_g": ("conditioner.embedders.1.model.", "gelu", True, True)},
}
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
# Tensors of the checkpoint that no module holds: CLIP's position_ids buffer (an arange, checked)
# and OpenCLIP's logit_scale (used only for contrastive training). SD2 conditions on the
# penultimate layer and never applies OpenCLIP's text_projection.
UNUSED = {"sd1": {"cond_stage_model.transformer.text_model.embeddings.position_ids"},
          "sd2": {"cond_stage_model.model.logit_scale", "cond_stage_model.model.text_projection"},
          "sdxl": {"conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
                   "conditioner.embedders.1.model.logit_scale"}}


def configs(arch):
    """Every module's config, as the manifest records it."""
    return {"unet": unet_config(arch), "vae": vae_config(arch),
            **{name: text_encoder_config(act) for name, (_, act, _, _) in TEXT_ENCODERS[arch].items()}}


class LayoutError(Exception):
    pass


def strict_load(module, state, what):
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise LayoutError(f"{what}: missing {sorted(result.missing_keys)}, "
                          f"unexpected {sorted(result.unexpected_keys)}")


def numel(tensors):
    return sum(t.numel() for t in tensors)


def load_tiny(arch, checkpoint_path):
    """The modules of one ebb-synth checkpoint, in float32 (f16 files convert exactly), in eval
    mode. Raises LayoutError naming every key that does not fit."""
    checkpoint = {k: v.float() if v.is_floating_point() else v
                  for k, v in load_file(str(checkpoint_path)).items()}
    used = set(UNUSED[arch])
    for name in used:
        if name not in checkpoint:
            raise LayoutError(f"{arch}: expected tensor {name} is not in the checkpoint")
        if name.endswith("position_ids") and not torch.equal(
                checkpoint[name].reshape(-1), torch.arange(77, dtype=checkpoint[name].dtype)):
            raise LayoutError(f"{arch}: {name} is not arange(77)")

    unet = UNet2DConditionModel(**unet_config(arch))
    strict_load(unet, sfu.convert_ldm_unet_checkpoint(checkpoint, dict(unet.config)), f"{arch} unet")
    vae = AutoencoderKL(**vae_config(arch))
    strict_load(vae, sfu.convert_ldm_vae_checkpoint(checkpoint, dict(vae.config)), f"{arch} vae")
    modules = {"unet": unet, "vae": vae}
    prefixes = {"unet": UNET_PREFIX, "vae": VAE_PREFIX}

    for name, (prefix, act, open_clip, projection) in TEXT_ENCODERS[arch].items():
        config = CLIPTextConfig(**text_encoder_config(act))
        model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
        if open_clip:
            state = sfu.convert_open_clip_checkpoint(model, checkpoint, prefix)
            if not projection:
                state.pop("text_projection.weight", None)
        else:
            state = sfu.convert_ldm_clip_checkpoint(checkpoint, remove_prefix=prefix)
            state.pop("text_model.embeddings.position_ids", None)
        if not any(k.startswith("text_model.") for k in model.state_dict()):
            # transformers 5's CLIPTextModel holds the text tower directly, without text_model.
            state = {k.removeprefix("text_model."): v for k, v in state.items()}
        strict_load(model, state, f"{arch} {name} ({prefix})")
        modules[name] = model
        prefixes[name] = prefix

    # Strict loading shows every parameter was filled; counting elements shows every tensor of
    # the file went somewhere, and nowhere twice.
    for name, prefix in prefixes.items():
        file_elements = numel(v for k, v in checkpoint.items() if k.startswith(prefix) and k not in used)
        module_elements = numel(modules[name].state_dict().values())
        if file_elements != module_elements:
            raise LayoutError(f"{arch} {name}: the file holds {file_elements} values under "
                              f"{prefix}, the module {module_elements}")
        used |= {k for k in checkpoint if k.startswith(prefix)}
    stray = sorted(set(checkpoint) - used)
    if stray:
        raise LayoutError(f"{arch}: tensors no module takes: {stray}")

    for module in modules.values():
        module.eval().requires_grad_(False)
    return modules


def check_against_synth_configs(arch, synth):
    """Compares the configs above with the config.json files ebb-synth writes (diffusers
    layout). SD2's text encoder is the exception: diffusers' folder drops the last OpenCLIP
    layer (the UNet reads the penultimate one), whereas these references keep the whole tower
    and take its penultimate layer."""
    names = {"unet": "unet", "vae": "vae"}
    names.update(zip(TEXT_ENCODERS[arch], ("text_encoder", "text_encoder_2")))
    problems = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / arch
        subprocess.run([synth, arch, "--size", "tiny", "--layout", "diffusers", "-o", str(folder)],
                       check=True, capture_output=True)
        for name, config in configs(arch).items():
            written = json.loads((folder / names[name] / "config.json").read_text())
            for key, value in config.items():
                expected = value
                if arch == "sd2" and name == "open_clip_h" and key == "num_hidden_layers":
                    expected = value - 1
                if written.get(key) != expected:
                    problems.append(f"{arch} {name}.{key}: ebb-synth {written.get(key)!r}, "
                                    f"here {expected!r}")
    if problems:
        raise LayoutError("; ".join(problems))
