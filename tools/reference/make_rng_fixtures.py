#!/usr/bin/env python3
"""Writes tests/data/pipeline/torch_randn.json: what torch.randn gives on a CPU generator.

    /opt/refenv/bin/python tools/reference/make_rng_fixtures.py

Each case seeds one torch.Generator and makes successive torch.randn calls on it (float32,
CPU), so the fixtures also pin how one call continues the stream of the previous one. Values
are stored as float32 bit patterns: all of them for short calls; for long ones an FNV-1a
64-bit hash of the little-endian bytes plus a few sampled values. Run on an x86-64 CPU with
AVX2 (PyTorch's normal kernel differs without it; the script refuses to run there).
"""
import json
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests/data/pipeline/torch_randn.json"
FULL_LIMIT = 128
SAMPLES = 16

CASES = [
    # (seed, [sizes of successive randn calls])
    *[(seed, [size]) for seed in (0, 42, 2**32 + 5) for size in (1, 7, 15, 16, 17, 100)],
    *[(seed, [4 * 64 * 64]) for seed in (0, 42, 2**32 + 5)],
    *[(seed, [4 * 128 * 128]) for seed in (0, 42)],
    (2**64 - 1, [33]),
    (123456789, [2, 3, 5]),  # odd sizes below 16: the cached second Box-Muller value
    (7, [7, 7, 1]),
    (7, [3, 16, 1]),  # the 16-wide path leaves the cached value in place
    (8, [17, 33, 48]),
    (9, [100, 5, 4 * 32 * 32]),
]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def describe(values: np.ndarray) -> dict:
    bits = values.astype("<f4").view("<u4")
    if bits.size <= FULL_LIMIT:
        return {"size": int(bits.size), "bits": [int(b) for b in bits]}
    index = np.linspace(0, bits.size - 1, SAMPLES).astype(np.int64)
    return {
        "size": int(bits.size),
        "fnv1a64": f"{fnv1a64(bits.tobytes()):016x}",
        "samples": [[int(i), int(bits[i])] for i in index],
    }


def main() -> None:
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        raise SystemExit(f"torch CPU capability is {capability}; these fixtures need AVX2/AVX512")
    cases = []
    for seed, sizes in CASES:
        generator = torch.Generator().manual_seed(seed)
        calls = [describe(torch.randn(size, generator=generator).numpy()) for size in sizes]
        cases.append({"seed": str(seed), "calls": calls})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    header = {"torch": torch.__version__, "cpu_capability": capability}
    lines = [json.dumps(case) for case in cases]  # one case a line: diffs stay readable
    OUT.write_text(json.dumps(header)[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main()
