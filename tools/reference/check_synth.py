#!/usr/bin/env python3
"""Checks ebb-synth's output against the reference Python packages.

Each interpreter runs the checks its packages allow, so run it with both:

  python3 tools/reference/check_synth.py --synth build/ebb-synth
      safetensors + gguf + numpy: every file opens, values are in range, GGUF names, shapes,
      types and values agree with the safetensors checkpoint, shard indexes are consistent.
  /opt/refenv/bin/python tools/reference/check_synth.py --synth build/ebb-synth
      + torch, diffusers, transformers: each diffusers folder has exactly the parameters the
      real classes have (names and shapes) and loads with from_pretrained; diffusers' own
      single-file conversion of our checkpoint gives our diffusers tensors, value for value.

--full also writes the full-size checkpoints (one architecture at a time, about 14 GB at most
under --work) and checks their names and shapes the same way, without reading the data.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

ARCHS = ["sd1", "sd2", "sdxl"]
TEXT_ENCODERS = {"sd1": ["text_encoder"], "sd2": ["text_encoder"],
                 "sdxl": ["text_encoder", "text_encoder_2"]}
failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)


def synth(tool, *args):
    out = subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def weight_files(folder, weights):
    index = os.path.join(folder, weights + ".safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return sorted(set(json.load(f)["weight_map"].values()))
    return [weights + ".safetensors"]


def folder_header(folder):
    weights = "model" if os.path.basename(folder).startswith("text_encoder") else \
        "diffusion_pytorch_model"
    merged = {}
    for name in weight_files(folder, weights):
        merged.update(header(os.path.join(folder, name)))
    return merged


def shapes(h):
    return {name: tuple(entry["shape"]) for name, entry in h.items()}


# --- Part A: safetensors, gguf, numpy ---------------------------------------------------------

def check_values(arch, path):
    from safetensors.numpy import load_file
    tensors = load_file(path)
    bad = []
    for name, value in tensors.items():
        if name.endswith("position_ids"):
            ok = value.dtype == np.int64 and np.array_equal(value.ravel(), np.arange(value.size))
        elif name.endswith("logit_scale"):
            ok = abs(float(value) - 4.6052) < 1e-2
        elif value.ndim == 1 and not name.endswith("bias"):
            ok = np.all(np.abs(value.astype(np.float32) - 1) <= 0.021)
        else:
            ok = np.all(np.abs(value.astype(np.float32)) <= 0.0401)
        if not ok:
            bad.append(name)
    check(not bad, f"{arch}: {len(tensors)} tensors load; values in range {bad[:3]}")
    return tensors


def check_gguf(arch, gguf_path, reference):
    import gguf
    reader = gguf.GGUFReader(gguf_path)
    names = [t.name for t in reader.tensors]
    check(set(names) == set(reference), f"{arch} gguf: the names of the safetensors checkpoint")
    problems = []
    quantized = 0
    for t in reader.tensors:
        expected = reference[t.name]
        shape = tuple(int(d) for d in reversed(t.shape))
        if shape != (expected.shape or (1,)):
            problems.append(f"{t.name} shape {shape}")
            continue
        kind = t.tensor_type.name
        is_unet_matrix = (t.name.startswith("model.diffusion_model.") and len(shape) >= 2 and
                          t.name.endswith(".weight") and shape[-1] % 32 == 0)
        want = ("I64" if expected.dtype == np.int64 else "F32" if len(shape) <= 1 else
                "Q8_0" if is_unet_matrix else "F16")
        if kind != want:
            problems.append(f"{t.name} is {kind}, wanted {want}")
        elif kind == "Q8_0":
            quantized += 1
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            if not (np.all(np.isfinite(values)) and np.all(np.abs(values) <= 0.0402)):
                problems.append(f"{t.name} dequantizes out of range")
        elif kind == "F16" and not np.array_equal(np.asarray(t.data).reshape(shape), expected):
            problems.append(f"{t.name} differs from the safetensors values")
        elif kind == "F32" and not np.allclose(np.asarray(t.data).reshape(shape),
                                               expected.astype(np.float32), atol=1e-3):
            problems.append(f"{t.name} differs from the safetensors values")
    check(not problems, f"{arch} gguf: shapes, types, values ({quantized} Q8_0) {problems[:3]}")


def check_folder(arch, root):
    with open(os.path.join(root, "model_index.json")) as f:
        index = json.load(f)
    folders = ["unet", "vae"] + TEXT_ENCODERS[arch]
    check(all(folder in index for folder in folders) and "scheduler" in index,
          f"{arch} diffusers: model_index.json lists {folders} and the scheduler")
    for folder in folders:
        path = os.path.join(root, folder)
        check(os.path.exists(os.path.join(path, "config.json")), f"{arch}/{folder}: config.json")
        weights = "model" if folder.startswith("text_encoder") else "diffusion_pytorch_model"
        index_path = os.path.join(path, weights + ".safetensors.index.json")
        if os.path.exists(index_path):
            with open(index_path) as f:
                shard_index = json.load(f)
            files = sorted(set(shard_index["weight_map"].values()))
            headers = {name: header(os.path.join(path, name)) for name in files}
            mapped = all(name in headers[file] for name, file in shard_index["weight_map"].items())
            total = sum(e["data_offsets"][1] - e["data_offsets"][0]
                        for h in headers.values() for e in h.values())
            count = sum(len(h) for h in headers.values())
            check(mapped and total == shard_index["metadata"]["total_size"] and
                  count == len(shard_index["weight_map"]),
                  f"{arch}/{folder}: {len(files)} shards agree with their index")


# --- Part B: torch, diffusers, transformers -----------------------------------------------------

def reference_model(folder, meta):
    """The real class for a folder, built from our config.json."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    name = os.path.basename(folder)
    context = torch.device("meta") if meta else torch.device("cpu")
    with context:
        if name == "unet":
            return UNet2DConditionModel.from_config(config), config
        if name == "vae":
            return AutoencoderKL.from_config(config), config
        cls = CLIPTextModelWithProjection if config["architectures"][0].endswith(
            "Projection") else CLIPTextModel
        return cls(CLIPTextConfig(**config)), config


def file_state_dict(model):
    """The model's parameters under the names files store them with: transformers 5 dropped
    CLIPTextModel's text_model submodule and maps the released files' text_model.* on load."""
    from transformers import CLIPTextModel
    state = model.state_dict()
    if isinstance(model, CLIPTextModel) and not any(k.startswith("text_model.") for k in state):
        state = {"text_model." + k: v for k, v in state.items()}
    return state


def check_against_classes(arch, root, meta):
    ours_by_folder = {}
    for folder in ["unet", "vae"] + TEXT_ENCODERS[arch]:
        path = os.path.join(root, folder)
        model, _ = reference_model(path, meta)
        expected = {k: tuple(v.shape) for k, v in file_state_dict(model).items()}
        ours = shapes(folder_header(path))
        ours_by_folder[folder] = ours
        # transformers ≥ 4.31 no longer saves position_ids; released files still carry it.
        extra = set(ours) - set(expected) - {"text_model.embeddings.position_ids"}
        missing = set(expected) - set(ours)
        wrong = [k for k in expected if k in ours and ours[k] != expected[k]]
        check(not extra and not missing and not wrong,
              f"{arch}/{folder}: {len(ours)} tensors are {type(model).__name__}'s parameters "
              f"(extra {sorted(extra)[:2]}, missing {sorted(missing)[:2]}, shape {wrong[:2]})")
    return ours_by_folder


def convert_single_file(checkpoint, root, arch):
    """diffusers' own conversion of a single-file checkpoint, per component folder."""
    from diffusers.loaders import single_file_utils as sfu
    converted = {}
    with open(os.path.join(root, "unet", "config.json")) as f:
        converted["unet"] = sfu.convert_ldm_unet_checkpoint(checkpoint, json.load(f))
    with open(os.path.join(root, "vae", "config.json")) as f:
        converted["vae"] = sfu.convert_ldm_vae_checkpoint(checkpoint, json.load(f))
    if arch in ("sd1", "sdxl"):
        converted["text_encoder"] = sfu.convert_ldm_clip_checkpoint(checkpoint)
    open_clip = {"sd2": ("text_encoder", "cond_stage_model.model."),
                 "sdxl": ("text_encoder_2", "conditioner.embedders.1.model.")}
    if arch in open_clip:
        folder, prefix = open_clip[arch]
        model, _ = reference_model(os.path.join(root, folder), meta=True)
        converted[folder] = sfu.convert_open_clip_checkpoint(model, checkpoint, prefix)
    return converted


def compare_conversion(arch, converted, ours, root, values):
    """`ours`: folder -> {name: tensor or shape}. SD2's diffusers text encoder drops the last
    OpenCLIP layer, which diffusers' converter skips only for the 24-layer original."""
    import torch
    for folder, tensors in converted.items():
        mine = ours[folder]
        with open(os.path.join(root, folder, "config.json")) as f:
            layers = json.load(f).get("num_hidden_layers", 0)
        dropped = {k for k in tensors
                   if (m := re.match(r"text_model\.encoder\.layers\.(\d+)\.", k))
                   and int(m.group(1)) >= layers}
        names = set(tensors) - dropped
        names.discard("text_model.embeddings.position_ids")
        ids = set(mine) - {"text_model.embeddings.position_ids"}
        if arch == "sd2":
            ids -= {"text_projection.weight"}
        same_names = names == ids
        mismatched = []
        for name in sorted(names & ids):
            theirs = tensors[name]
            if values:
                if not torch.equal(theirs.float(), mine[name].float()):
                    mismatched.append(name)
            elif tuple(theirs.shape) != mine[name]:
                mismatched.append(name)
        what = "values" if values else "shapes"
        check(same_names and not mismatched,
              f"{arch}/{folder}: diffusers' conversion of the single file gives our tensors "
              f"({len(names)} names, {what}; differ {sorted(names ^ ids)[:2]} {mismatched[:2]})")


def check_tiny_with_torch(arch, work):
    import torch
    from safetensors.torch import load_file
    root = os.path.join(work, f"{arch}_f32")
    check_against_classes(arch, root, meta=False)
    for folder in ["unet", "vae"] + TEXT_ENCODERS[arch]:
        model, _ = reference_model(os.path.join(root, folder), meta=False)
        cls = type(model)
        loaded = cls.from_pretrained(os.path.join(root, folder))
        name, param = next(iter(file_state_dict(loaded).items()))
        ours = {}
        for file in weight_files(os.path.join(root, folder), "model" if folder.startswith(
                "text_encoder") else "diffusion_pytorch_model"):
            ours.update(load_file(os.path.join(root, folder, file)))
        check(torch.equal(param, ours[name]), f"{arch}/{folder}: from_pretrained loads our values")
    checkpoint = load_file(os.path.join(work, f"{arch}_f32.safetensors"))
    ours = {}
    for folder in ["unet", "vae"] + TEXT_ENCODERS[arch]:
        weights = "model" if folder.startswith("text_encoder") else "diffusion_pytorch_model"
        ours[folder] = {}
        for file in weight_files(os.path.join(root, folder), weights):
            ours[folder].update(load_file(os.path.join(root, folder, file)))
    compare_conversion(arch, convert_single_file(checkpoint, root, arch), ours, root,
                       values=True)


def check_full_with_torch(arch, single, root):
    import torch
    ours = check_against_classes(arch, root, meta=True)
    checkpoint = {}
    for name, shape in shapes(header(single)).items():
        checkpoint[name] = torch.empty(shape, device="meta")
    compare_conversion(arch, convert_single_file(checkpoint, root, arch), ours, root,
                       values=False)


# --- driver ---------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", default="build/ebb-synth")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--full", action="store_true", help="also check the full-size models")
    parser.add_argument("--arch", choices=ARCHS, action="append",
                        help="check only these architectures (repeatable; default: all)")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        import diffusers  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    try:
        import gguf  # noqa: F401
        have_gguf = True
    except ImportError:
        have_gguf = False
    print(f"checks: safetensors{' + gguf' if have_gguf else ''}"
          f"{' + torch/diffusers/transformers' if have_torch else ''}")

    work = args.work or tempfile.mkdtemp(prefix="ebb_check_synth_", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    try:
        archs = args.arch or ARCHS
        for arch in archs:
            single = os.path.join(work, f"{arch}.safetensors")
            synth(args.synth, arch, "-o", single, "--overwrite")
            synth(args.synth, arch, "--dtype", "f32", "-o", os.path.join(work, f"{arch}_f32.safetensors"),
                  "--overwrite")
            synth(args.synth, arch, "--dtype", "f32", "--layout", "diffusers", "--shard-mb", "0.5",
                  "-o", os.path.join(work, f"{arch}_f32"), "--overwrite")
            reference = check_values(arch, single)
            check_folder(arch, os.path.join(work, f"{arch}_f32"))
            if have_gguf:
                path = os.path.join(work, f"{arch}.gguf")
                synth(args.synth, arch, "--format", "gguf", "--quant", "q8_0", "-o", path,
                      "--overwrite")
                check_gguf(arch, path, reference)
            if have_torch:
                check_tiny_with_torch(arch, work)
        if args.full:
            for arch in archs:
                single = os.path.join(work, f"{arch}_full.safetensors")
                root = os.path.join(work, f"{arch}_full")
                print(f"{arch} full single file: " +
                      synth(args.synth, arch, "--size", "full", "-o", single, "--overwrite"))
                print(f"{arch} full diffusers: " +
                      synth(args.synth, arch, "--size", "full", "--layout", "diffusers", "-o",
                            root, "--overwrite"))
                if have_torch:
                    check_full_with_torch(arch, single, root)
                else:
                    ours = sum(len(folder_header(os.path.join(root, f)))
                               for f in ["unet", "vae"] + TEXT_ENCODERS[arch])
                    check(ours > 0, f"{arch} full diffusers: {ours} tensors")
                os.remove(single)
                shutil.rmtree(root)
    finally:
        if args.work is None:
            shutil.rmtree(work)
    print(f"{len(failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
