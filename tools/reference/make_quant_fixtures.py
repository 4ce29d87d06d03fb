#!/usr/bin/env python3
"""Writes the reference fixtures of tests/data/quant/.

Block types (gguf-py is the reference; it has no Q8_K dequantizer, so Q8_K is tested in C++):
  <TYPE>.bin  16 random blocks: random quant bytes, finite f16 scale fields (12 ordinary,
              then the largest f16, a subnormal, the smallest subnormal or zero, and a random
              finite bit pattern)
  <TYPE>.f32  gguf.quants.dequantize of <TYPE>.bin (little-endian float32)
Float formats (numpy and ml_dtypes are the references):
  f8_e4m3.f32, f8_e5m2.f32      all 256 patterns decoded to float32
  rounding_inputs.f32           edge cases, f16/bf16 ties and random float32 values
  rounding_f16.u16              numpy's astype(float16) of rounding_inputs.f32
  rounding_bf16.u16             ml_dtypes' astype(bfloat16) of rounding_inputs.f32

Usage: make_quant_fixtures.py [OUT_DIR]   (default: tests/data/quant next to this tool)
Needs numpy, gguf and ml_dtypes (pip install gguf ml_dtypes).
"""

import sys
from pathlib import Path

import ml_dtypes
import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize

SEED = 20261125
BLOCKS = 16

# Byte offsets of the f16 scale fields in each block (ggml-common.h layouts).
F16_FIELDS = {
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q8_0": [0],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
    "IQ4_NL": [0],
    "IQ4_XS": [0],
}


def scale_bits(rng: np.random.Generator, block: int) -> int:
    """An f16 scale pattern: ordinary magnitudes first, then the edge cases."""
    sign = int(rng.integers(0, 2)) << 15
    if block < BLOCKS - 4:
        magnitude = np.float16(10.0 ** rng.uniform(-5.0, 0.5))
        return sign | int(magnitude.view(np.uint16))
    if block == BLOCKS - 4:
        return sign | 0x7BFF  # 65504
    if block == BLOCKS - 3:
        return sign | int(rng.integers(1, 0x400))  # subnormal
    if block == BLOCKS - 2:
        return sign | int(rng.choice([0x0000, 0x0001]))
    return sign | int(rng.integers(0, 0x7C00))  # any finite pattern


def write_block_fixtures(rng: np.random.Generator, out: Path) -> None:
    for name, offsets in F16_FIELDS.items():
        qtype = GGMLQuantizationType[name]
        _, block_bytes = GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, size=(BLOCKS, block_bytes), dtype=np.uint8)
        for b in range(BLOCKS):
            for offset in offsets:
                blocks[b, offset : offset + 2] = np.array([scale_bits(rng, b)], "<u2").view(np.uint8)
        values = dequantize(blocks, qtype).astype("<f4").reshape(-1)
        assert np.isfinite(values).all(), name
        (out / f"{name}.bin").write_bytes(blocks.tobytes())
        (out / f"{name}.f32").write_bytes(values.tobytes())


def rounding_inputs(rng: np.random.Generator) -> np.ndarray:
    edges = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 65504.0, 65519.996, 65520.0, -65520.0,
         65536.0, 1e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-25, 2.0**-26, 2.0**-14, 2.0**-14 - 2.0**-25,
         np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-45, 1.0 + 2.0**-8,
         1.0 + 3 * 2.0**-8, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11],
        dtype=np.float32,
    )
    random_bits = rng.integers(0, 2**32, size=2048, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f16_range = (rng.choice([-1.0, 1.0], size=2048) * 2.0 ** rng.uniform(-26, 16.5, size=2048)).astype(np.float32)
    # Midpoints between neighbouring finite f16 values are exact in f32; also one f32 ulp off.
    low = rng.integers(0, 0x7BFF, size=1024, dtype=np.uint16)
    mids = (low.view(np.float16).astype(np.float64) + (low + 1).view(np.float16).astype(np.float64)) / 2
    mids = mids.astype(np.float32)
    f16_ties = np.concatenate([mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(np.inf))])
    bf16_ties = ((rng.integers(0, 0x7F80, size=1024, dtype=np.uint32) << 16) | 0x8000).view(np.float32)
    values = np.concatenate([edges, random_bits, f16_range, f16_ties, bf16_ties]).astype(np.float32)
    signs = rng.integers(0, 2, size=values.size, dtype=np.uint32) << 31
    signs[: edges.size] = 0
    return (values.view(np.uint32) ^ signs).view(np.float32)


def write_float_fixtures(rng: np.random.Generator, out: Path) -> None:
    codes = np.arange(256, dtype=np.uint8)
    (out / "f8_e4m3.f32").write_bytes(codes.view(ml_dtypes.float8_e4m3fn).astype("<f4").tobytes())
    (out / "f8_e5m2.f32").write_bytes(codes.view(ml_dtypes.float8_e5m2).astype("<f4").tobytes())
    inputs = rounding_inputs(rng)
    (out / "rounding_inputs.f32").write_bytes(inputs.astype("<f4").tobytes())
    with np.errstate(over="ignore", invalid="ignore"):
        (out / "rounding_f16.u16").write_bytes(inputs.astype(np.float16).view("<u2").tobytes())
        (out / "rounding_bf16.u16").write_bytes(inputs.astype(ml_dtypes.bfloat16).view("<u2").tobytes())


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "tests" / "data" / "quant"
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    write_block_fixtures(rng, out)
    write_float_fixtures(rng, out)


if __name__ == "__main__":
    main()
