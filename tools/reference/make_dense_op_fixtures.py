#!/usr/bin/env python3
"""Writes tests/data/ops/*.safetensors: inputs and PyTorch's outputs for the CPU backend's dense
ops (linear, conv2d, norms, broadcasting add/mul, layout ops) on random inputs of the shapes
SD1.5, SDXL and Flux use, cut down (fewer output channels, smaller images) to stay small.

Each file holds the operands, the expected output(s) and, in its metadata, the op and its
parameters. References are computed in float64 from the stored (f32, f16 or bf16) values and
stored as f32.

Run with the reference environment: /opt/refenv/bin/python tools/reference/make_dense_op_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "ops"


def rand(*shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape) * scale + offset).float()


def save(name, tensors, **params):
    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, OUT / f"{name}.safetensors", metadata={"params": json.dumps(params)})


def f64(t):
    return t.double()


def linear(name, x_shape, out_features, bias, wdtype=torch.float32):
    x = rand(*x_shape)
    w = (rand(out_features, x_shape[-1]) / x_shape[-1] ** 0.5).to(wdtype)
    tensors = {"x": x, "w": w}
    b = rand(out_features) if bias else None
    if bias:
        tensors["b"] = b
    out = F.linear(f64(x), f64(w), f64(b) if bias else None)
    save(name, {**tensors, "out": out.float()}, op="linear")


def conv2d(name, x_shape, out_channels, kernel, stride, pad, wdtype=torch.float32):
    """pad: (top, left, bottom, right)"""
    x = rand(*x_shape)
    fan_in = x_shape[1] * kernel * kernel
    w = (rand(out_channels, x_shape[1], kernel, kernel) / fan_in ** 0.5).to(wdtype)
    b = rand(out_channels)
    top, left, bottom, right = pad
    padded = F.pad(f64(x), (left, right, top, bottom))
    out = F.conv2d(padded, f64(w), f64(b), stride=stride)
    save(name, {"x": x, "w": w, "b": b, "out": out.float()}, op="conv2d", stride=stride,
         pad=list(pad))


def group_norm(name, x_shape, groups, eps, affine=True):
    x = rand(*x_shape, scale=2.0, offset=0.5)
    tensors = {"x": x}
    gamma = beta = None
    if affine:
        gamma, beta = rand(x_shape[1]), rand(x_shape[1])
        tensors.update(gamma=gamma, beta=beta)
    out = F.group_norm(f64(x), groups, f64(gamma) if affine else None,
                       f64(beta) if affine else None, eps)
    save(name, {**tensors, "out": out.float()}, op="group_norm", groups=groups, eps=eps)


def layer_norm(name, x_shape, eps, affine):
    x = rand(*x_shape, scale=3.0, offset=-1.0)
    d = x_shape[-1]
    tensors = {"x": x}
    gamma = beta = None
    if affine:
        gamma, beta = rand(d), rand(d)
        tensors.update(gamma=gamma, beta=beta)
    out = F.layer_norm(f64(x), (d,), f64(gamma) if affine else None,
                       f64(beta) if affine else None, eps)
    save(name, {**tensors, "out": out.float()}, op="layer_norm", eps=eps)


def rms_norm(name, x_shape, eps):
    x = rand(*x_shape, scale=2.0)
    gamma = rand(x_shape[-1])
    out = F.rms_norm(f64(x), (x_shape[-1],), f64(gamma), eps)
    save(name, {"x": x, "gamma": gamma, "out": out.float()}, op="rms_norm", eps=eps)


def binary(name, op, a_shape, b_shape):
    a, b = rand(*a_shape), rand(*b_shape)
    out = f64(a) + f64(b) if op == "add" else f64(a) * f64(b)
    save(name, {"a": a, "b": b, "out": out.float()}, op=op)


def main():
    torch.manual_seed(20240611)
    # Linear: SD1.5 cross-attention (CLIP context -> 320), SDXL (2048 -> 1280, rows cut),
    # Flux (3072 hidden, rows cut); f16 / bf16 weights as checkpoints store them.
    linear("linear_sd15_context", (1, 77, 768), 160, bias=True)
    linear("linear_sdxl", (1, 32, 2048), 64, bias=False)
    linear("linear_flux", (1, 16, 3072), 64, bias=True)
    linear("linear_f16_weights", (1, 16, 768), 320, bias=True, wdtype=torch.float16)
    linear("linear_bf16_weights", (1, 16, 3072), 64, bias=True, wdtype=torch.bfloat16)
    # Conv2d: SD1.5 UNet convs with output channels cut, its downsample, skip 1x1, conv_in,
    # and the VAE encoder's stride-2 conv padded on the right and bottom only.
    conv2d("conv2d_sd15_320", (1, 320, 16, 16), 32, 3, 1, (1, 1, 1, 1))
    conv2d("conv2d_sd15_down_640", (1, 640, 8, 8), 32, 3, 2, (1, 1, 1, 1))
    conv2d("conv2d_sd15_1280", (1, 1280, 8, 8), 16, 3, 1, (1, 1, 1, 1))
    conv2d("conv2d_sd15_skip_1x1", (1, 640, 8, 8), 64, 1, 1, (0, 0, 0, 0))
    conv2d("conv2d_sd15_conv_in", (2, 4, 64, 64), 16, 3, 1, (1, 1, 1, 1))
    conv2d("conv2d_vae_down", (1, 128, 32, 32), 32, 3, 2, (0, 0, 1, 1))
    conv2d("conv2d_f16_weights", (1, 64, 16, 16), 32, 3, 1, (1, 1, 1, 1), wdtype=torch.float16)
    # Norms
    group_norm("group_norm_sd15", (1, 320, 16, 16), 32, 1e-5)
    group_norm("group_norm_vae", (1, 512, 8, 8), 32, 1e-6)
    group_norm("group_norm_no_affine", (2, 64, 4, 4), 8, 1e-5, affine=False)
    layer_norm("layer_norm_clip", (1, 77, 768), 1e-5, affine=True)
    layer_norm("layer_norm_flux", (1, 16, 3072), 1e-6, affine=False)
    rms_norm("rms_norm_flux_qk", (1, 24, 8, 128), 1e-6)
    rms_norm("rms_norm_t5", (1, 8, 4096), 1e-6)
    # Broadcasting: time embedding onto a feature map, Flux modulation.
    binary("add_time_embedding", "add", (2, 320, 8, 8), (2, 320, 1, 1))
    binary("mul_modulation", "mul", (1, 16, 3072), (1, 1, 3072))
    # Layout: UNet skip concat, upsample, NCHW -> NHWC, Flux qkv split.
    a, b = rand(1, 320, 8, 8), rand(1, 640, 8, 8)
    save("concat_skip", {"a": a, "b": b, "out": torch.cat([a, b], 1)}, op="concat", dim=1)
    x = rand(1, 320, 8, 8)
    save("upsample_nearest2x", {"x": x, "out": F.interpolate(x, scale_factor=2.0, mode="nearest")},
         op="upsample_nearest2x")
    save("permute_nhwc", {"x": x, "out": x.permute(0, 2, 3, 1)}, op="permute", dims=[0, 2, 3, 1])
    qkv = rand(1, 4, 3 * 3072)
    q, k, v = qkv.split(3072, dim=-1)
    save("split_qkv", {"x": qkv, "out0": q, "out1": k, "out2": v}, op="split",
         sizes=[3072] * 3, dim=-1)
    total = sum(p.stat().st_size for p in OUT.glob("*.safetensors"))
    print(f"wrote {len(list(OUT.glob('*.safetensors')))} files, {total / 2**20:.1f} MiB, to {OUT}")


if __name__ == "__main__":
    main()
