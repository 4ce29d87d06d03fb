#!/usr/bin/env python3
"""Reference outputs for the CPU kernels in src/backend/cpu/kernels, computed with PyTorch and
diffusers on the CPU.

Writes tests/data/kernels/<name>.bin files (raw little-endian float32, int64 for index lists)
and tests/data/kernels/manifest.json, which lists every fixture: its kind, parameters and
tensors (file, dtype, shape). Inputs are drawn from a fixed seed, so a rerun reproduces the
same files.

Attention references come from torch.nn.functional.scaled_dot_product_attention in float64
(rounded to float32 for storage); the float32 torch result's error against it is recorded as
`torch_f32_rel_err` for context. To stay small, long-sequence fixtures keep the output of a
sample of query rows only (`out_rows`), or keep only a sample of the query rows themselves
(`q_rows_sampled_from`), which gives the same outputs since each query row is independent.

Usage: /opt/refenv/bin/python tools/reference/make_kernel_fixtures.py [--out DIR]
"""
import argparse
import json
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU
from diffusers.models.embeddings import (apply_rotary_emb, get_1d_rotary_pos_embed,
                                         get_timestep_embedding)
from diffusers.models.transformers.transformer_flux import FluxPosEmbed

REPO = pathlib.Path(__file__).resolve().parents[2]


class Writer:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.fixtures = {}

    def tensor(self, fixture, name, value):
        array = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
        dtype = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f32",
                 np.dtype(np.int64): "i64"}[array.dtype]
        array = np.ascontiguousarray(array.astype("<f4" if dtype == "f32" else "<i8"))
        file = f"{fixture}.{name}.bin"
        array.tofile(self.out_dir / file)
        return {"file": file, "dtype": dtype, "shape": list(array.shape)}

    def add(self, name, kind, params, tensors):
        self.fixtures[name] = {
            "kind": kind,
            "params": params,
            "tensors": {k: self.tensor(name, k, v) for k, v in tensors.items()},
        }

    def finish(self):
        manifest = {
            "generator": "tools/reference/make_kernel_fixtures.py",
            "torch": torch.__version__,
            "fixtures": self.fixtures,
        }
        (self.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def sdpa(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attention_fixture(w, gen, name, batch, heads, q_len, kv_len, dim, *, layout="bhld",
                      out_rows=None, q_rows_sampled_from=None, mask_kind=None, note=""):
    q = torch.randn(batch, heads, q_len, dim, generator=gen)
    k = torch.randn(batch, heads, kv_len, dim, generator=gen)
    v = torch.randn(batch, heads, kv_len, dim, generator=gen)
    mask = None
    if mask_kind == "causal":  # [Lq, Lkv], CLIP's text mask
        mask = torch.full((q_len, kv_len), -math.inf).triu(1)
    elif mask_kind == "key_padding":  # [B, 1, 1, Lkv]: batch b sees its first lengths[b] keys
        lengths = torch.randint(1, kv_len + 1, (batch,), generator=gen)
        lengths[0] = kv_len
        mask = torch.zeros(batch, 1, 1, kv_len)
        for b in range(batch):
            mask[b, :, :, lengths[b]:] = -math.inf
    ref = sdpa(q.double(), k.double(), v.double(), None if mask is None else mask.double())
    f32 = sdpa(q, k, v, mask)
    torch_err = ((f32.double() - ref).norm() / ref.norm()).item()
    tensors = {}
    # [B, H, L, D] is torch's layout; [B, L, H, D] is what a projection writes.
    store = (lambda t: t) if layout == "bhld" else (lambda t: t.transpose(1, 2))
    tensors.update(q=store(q), k=store(k), v=store(v))
    if mask is not None:
        tensors["mask"] = mask
    params = {"batch": batch, "heads": heads, "q_len": q_len, "kv_len": kv_len, "head_dim": dim,
              "layout": layout, "torch_f32_rel_err": torch_err, "note": note}
    if q_rows_sampled_from:
        params["q_rows_sampled_from"] = q_rows_sampled_from
    if out_rows is not None:
        rows = torch.sort(torch.randperm(q_len, generator=gen)[:out_rows]).values
        tensors["out_rows"] = rows.to(torch.int64)
        ref = ref[:, :, rows]
    tensors["out"] = store(ref)
    w.add(name, "attention", params, tensors)


def attention_fixtures(w, gen):
    attention_fixture(w, gen, "attn_sd15_self_d40", 1, 2, 4096, 4096, 40, out_rows=64,
                      note="SD1.5 first-stage self-attention at 512x512 (2 of its 8 heads)")
    attention_fixture(w, gen, "attn_cross_d64_77", 1, 2, 256, 77, 64, layout="blhd",
                      q_rows_sampled_from=4096,
                      note="cross-attention to 77 text tokens, [B, L, H, D] memory")
    attention_fixture(w, gen, "attn_cross_d160_77", 1, 2, 128, 77, 160,
                      q_rows_sampled_from=256, note="SD1.5 innermost cross-attention")
    attention_fixture(w, gen, "attn_cross_d128_154_padded", 2, 2, 128, 154, 128,
                      mask_kind="key_padding", q_rows_sampled_from=4096,
                      note="cross-attention to 154 text tokens with a key-padding mask")
    attention_fixture(w, gen, "attn_self_d128", 1, 2, 128, 512, 128, q_rows_sampled_from=512,
                      note="Flux/SD3 head size")
    attention_fixture(w, gen, "attn_vae_d512", 1, 1, 32, 1024, 512, q_rows_sampled_from=1024,
                      note="VAE mid-block single-head attention on a 32x32 latent")
    attention_fixture(w, gen, "attn_clip_causal_d64", 1, 4, 77, 77, 64, mask_kind="causal",
                      note="CLIP text self-attention with its causal mask")


def pointwise_fixtures(w, gen):
    x = torch.randn(8192, generator=gen) * 4
    x[:6] = torch.tensor([0.0, -0.0, 30.0, -30.0, 1e-20, -9.0])
    xd = x.double()
    w.add("silu", "silu", {}, {"x": x, "out": F.silu(xd)})
    w.add("sigmoid", "sigmoid", {}, {"x": x, "out": torch.sigmoid(xd)})
    w.add("gelu", "gelu", {"approximate": "none"}, {"x": x, "out": F.gelu(xd)})
    w.add("gelu_tanh", "gelu", {"approximate": "tanh"},
          {"x": x, "out": F.gelu(xd, approximate="tanh")})

    rows = torch.randn(64, 1000, generator=gen) * 8
    rows[3, 10:500] = -math.inf
    w.add("softmax", "softmax", {}, {"x": rows, "out": torch.softmax(rows.double(), dim=-1)})

    # diffusers' GEGLU after its projection: hidden, gate = proj(x).chunk(2, -1).
    geglu = GEGLU(8, 640).double()
    geglu.proj = torch.nn.Identity()
    projected = torch.randn(64, 1280, generator=gen) * 3
    with torch.no_grad():
        w.add("geglu", "geglu", {"approximate": "none"},
              {"x": projected, "out": geglu(projected.double())})


def timestep_fixtures(w, gen):
    sd_steps = torch.tensor([999.0, 981.0, 500.5, 1.0, 0.0])
    cases = [
        ("timestep_sd", sd_steps, 320, dict(flip_sin_to_cos=True, downscale_freq_shift=0), 1.0),
        ("timestep_default", sd_steps, 256, {}, 1.0),
        ("timestep_odd", sd_steps, 33,
         dict(downscale_freq_shift=0.5, scale=2.0, max_period=5000), 1.0),
        # Flux: the transformer scales t in [0, 1] by 1000 (in float32) before Timesteps(256,
        # flip_sin_to_cos=True, downscale_freq_shift=0).
        ("timestep_flux", torch.tensor([1.0, 0.75, 0.0321, 0.0]), 256,
         dict(flip_sin_to_cos=True, downscale_freq_shift=0), 1000.0),
    ]
    for name, t, dim, kwargs, time_factor in cases:
        out = get_timestep_embedding(t.float() * time_factor, dim, **kwargs)
        params = {"dim": dim, "flip_sin_to_cos": kwargs.get("flip_sin_to_cos", False),
                  "downscale_freq_shift": kwargs.get("downscale_freq_shift", 1),
                  "scale": kwargs.get("scale", 1), "max_period": kwargs.get("max_period", 10000),
                  "time_factor": time_factor}
        w.add(name, "timestep_embedding", params, {"t": t, "out": out})


def rope_fixtures(w, gen):
    # Flux: 8 text tokens at (0, 0, 0), then a 16x16 image grid at (0, row, column).
    text, h, wd = 8, 16, 16
    img = torch.zeros(h, wd, 3)
    img[..., 1] = torch.arange(h)[:, None]
    img[..., 2] = torch.arange(wd)[None, :]
    ids = torch.cat([torch.zeros(text, 3), img.reshape(-1, 3)])
    cos, sin = FluxPosEmbed(theta=10000, axes_dim=[16, 56, 56])(ids)
    x = torch.randn(1, 2, ids.shape[0], 128, generator=gen)
    out = apply_rotary_emb(x, (cos, sin), use_real=True, use_real_unbind_dim=-1)
    w.add("rope_flux", "rope", {"layout": "interleaved_pairs", "axes_dim": [16, 56, 56],
                                "theta": 10000},
          {"ids": ids, "cos": cos, "sin": sin, "x": x, "out": out})

    # "Rotate half": pairs (x[i], x[i + D/2]), tables cat([cos, cos]).
    pos = torch.arange(100).float()
    cos, sin = get_1d_rotary_pos_embed(64, pos, theta=10000, use_real=True,
                                       repeat_interleave_real=False, freqs_dtype=torch.float64)
    x = torch.randn(2, 3, 100, 64, generator=gen)
    out = apply_rotary_emb(x, (cos, sin), use_real=True, use_real_unbind_dim=-2)
    w.add("rope_split_halves", "rope", {"layout": "split_halves", "axes_dim": [64],
                                        "theta": 10000},
          {"ids": pos[:, None], "cos": cos, "sin": sin, "x": x, "out": out})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "tests/data/kernels")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20240601)
    w = Writer(args.out)
    attention_fixtures(w, gen)
    pointwise_fixtures(w, gen)
    timestep_fixtures(w, gen)
    rope_fixtures(w, gen)
    w.finish()


if __name__ == "__main__":
    main()
