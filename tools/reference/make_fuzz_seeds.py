#!/usr/bin/env python3
"""Writes small valid safetensors and GGUF files with the reference python packages.

Outputs (paths relative to the repository root):
  fuzz/corpus/safetensors_fuzz/*.safetensors, fuzz/corpus/gguf_fuzz/*.gguf  fuzzer seeds
  fuzz/regressions/<target>/tricky-*  hand-made hostile inputs the regression test replays
  tests/data/io/reference.safetensors{,.json}, tests/data/io/reference.gguf{,.json}
      parser fixtures and what the python packages say they contain, for the C++ tests to
      compare against.

Usage: python3 tools/reference/make_fuzz_seeds.py   (needs numpy, safetensors, gguf)
"""
import json
import struct
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from safetensors import safe_open
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(20240601)


def random_array(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return RNG.standard_normal(size=shape).astype(dtype)


# --- safetensors -------------------------------------------------------------------------------

SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16,
    "U8": np.uint8, "BOOL": np.bool_,
}


def write_safetensors(path, tensors, metadata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def describe_safetensors(path):
    """What the safetensors package reads back; offsets found by locating each tensor's bytes."""
    raw = path.read_bytes()
    data_offset = 8 + int.from_bytes(raw[:8], "little")
    tensors = []
    with safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            array = f.get_tensor(name)
            payload = array.tobytes()
            assert raw.count(payload, data_offset) == 1, f"{name}'s bytes are not unique"
            offset = raw.find(payload, data_offset)
            tensors.append({"name": name, "dtype": f.get_slice(name).get_dtype(),
                            "shape": list(array.shape), "nbytes": len(payload), "offset": offset})
    return {"data_offset": data_offset, "metadata": metadata, "tensors": tensors}


def reference_safetensors():
    tensors = {f"layer.{name.lower()}": random_array((2, 3), dtype)
               for name, dtype in SAFETENSORS_DTYPES.items()}
    tensors["scalar"] = np.array(1.5, dtype=np.float32)
    tensors["conv.weight"] = random_array((4, 2, 3, 3), np.float16)
    return tensors, {"format": "pt", "note": "fixture \u00e9"}


# --- GGUF --------------------------------------------------------------------------------------

TYPE_NAMES = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32",
              V.INT32: "i32", V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string",
              V.ARRAY: "array", V.UINT64: "u64", V.INT64: "i64", V.FLOAT64: "f64"}

# key, type, value (arrays: (element type, items)); floats are exact in binary.
GGUF_METADATA = [
    ("general.name", V.STRING, "fixture"),
    ("test.u8", V.UINT8, 200),
    ("test.i8", V.INT8, -100),
    ("test.u16", V.UINT16, 60000),
    ("test.i16", V.INT16, -30000),
    ("test.u32", V.UINT32, 4000000000),
    ("test.i32", V.INT32, -2000000000),
    ("test.f32", V.FLOAT32, -0.15625),
    ("test.bool", V.BOOL, True),
    ("test.u64", V.UINT64, 18000000000000000000),
    ("test.i64", V.INT64, -9000000000000000000),
    ("test.f64", V.FLOAT64, 3.141592653589793),
    ("test.string", V.STRING, "caf\u00e9 \u2615"),
    ("test.array.i32", V.ARRAY, (V.INT32, [1, -2, 3])),
    ("test.array.u8", V.ARRAY, (V.UINT8, [0, 255])),
    ("test.array.f64", V.ARRAY, (V.FLOAT64, [0.5, -2.25])),
    ("test.array.bool", V.ARRAY, (V.BOOL, [True, False, True])),
    ("test.array.string", V.ARRAY, (V.STRING, ["a", "", "xyz"])),
    ("test.array.nested", V.ARRAY, (V.ARRAY, [[1, 2], [3]])),
]


def gguf_value_json(vtype, value):
    if vtype == V.ARRAY:
        sub_type, items = value
        if sub_type == V.ARRAY:  # the writer types nested python int lists as i32
            items = [(V.INT32, inner) for inner in items]
        return {"type": "array", "element_type": TYPE_NAMES[sub_type],
                "items": [gguf_value_json(sub_type, item) for item in items]}
    return {"type": TYPE_NAMES[vtype], "value": value}


def write_gguf(path, metadata, tensors, alignment=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "fixture")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    for key, vtype, value in metadata:
        if vtype == V.ARRAY:
            sub_type, items = value
            writer.add_key_value(key, items, vtype, sub_type=sub_type)
        else:
            writer.add_key_value(key, value, vtype)
    for name, array, raw_dtype in tensors:
        writer.add_tensor(name, array, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def gguf_tensors():
    q8 = random_array((2, 64), np.float32)
    q4 = random_array((1, 32), np.float32)
    return [
        ("blk.0.weight", random_array((3, 5), np.float32), None),
        ("blk.0.bias", random_array((7,), np.float16), None),
        ("blk.1.q8", gguf.quants.quantize(q8, Q.Q8_0), Q.Q8_0),
        ("blk.1.q4", gguf.quants.quantize(q4, Q.Q4_0), Q.Q4_0),
        ("blk.2.conv", random_array((2, 1, 3, 3), np.float32), None),
        ("blk.2.ids", random_array((4,), np.int32), None),
    ]


def describe_gguf(path, metadata, alignment):
    reader = gguf.GGUFReader(str(path))
    fields = [name for name in reader.fields if not name.startswith("GGUF.")]
    expected_keys = ["general.architecture"]
    if alignment is not None:
        expected_keys.append("general.alignment")
    expected_keys += [key for key, _, _ in metadata]
    assert fields == expected_keys, (fields, expected_keys)
    described = [gguf_value_json(V.STRING, "fixture")]
    if alignment is not None:
        described.append(gguf_value_json(V.UINT32, alignment))
    described += [gguf_value_json(vtype, value) for _, vtype, value in metadata]
    return {
        "version": int(reader.fields["GGUF.version"].contents()),
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "metadata": [{"key": k, **v} for k, v in zip(expected_keys, described)],
        "tensors": [{"name": t.name, "dtype": t.tensor_type.name,
                     "ne": [int(d) for d in t.shape], "offset": int(t.data_offset),
                     "nbytes": int(t.n_bytes)} for t in reader.tensors],
    }


def write_json(path, value):
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --- hostile inputs ------------------------------------------------------------------------------

def safetensors_bytes(header, data=b""):
    return struct.pack("<Q", len(header)) + header + data


def tricky_safetensors():
    entry = b'{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    return {
        "length-max": struct.pack("<Q", 2**64 - 1) + b"{}",
        "nul-then-garbage": safetensors_bytes(b'{}\0{"x":1}'),
        "escaped-duplicate": safetensors_bytes(b'{"a\\\"":' + entry + b',"a\\\"":' + entry + b"}",
                                               b"\0" * 4),
        "elements-overflow": safetensors_bytes(
            b'{"w":{"dtype":"U8","shape":[4294967296,4294967297],"data_offsets":[0,0]}}'),
        "offsets-wrap": safetensors_bytes(
            b'{"w":{"dtype":"U8","shape":[2],"data_offsets":[18446744073709551615,1]}}'),
        "deep-nesting": safetensors_bytes(b"[" * 100000 + b"]" * 100000),
        "padded-empty": safetensors_bytes(b"{}" + b" " * 1000),
    }


def gguf_bytes(version=3, tensors=0, kvs=0, body=b""):
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs) + body


def gguf_string(s):
    return struct.pack("<Q", len(s)) + s


def tricky_gguf():
    def kv(key, vtype, payload):
        return gguf_string(key) + struct.pack("<I", vtype) + payload

    nested = struct.pack("<IQ", V.UINT8, 0)
    for _ in range(9):
        nested = struct.pack("<IQ", V.ARRAY, 1) + nested
    tensor = gguf_string(b"w") + struct.pack("<IQIQ", 1, 4, Q.F32, 2**64 - 32)
    return {
        "tensor-count-huge": gguf_bytes(tensors=2**63, body=b"\0" * 64),
        "array-huge-u64": gguf_bytes(kvs=1, body=kv(b"a", V.ARRAY, struct.pack("<IQ", V.UINT64, 2**61))),
        "nested-9": gguf_bytes(kvs=1, body=kv(b"a", V.ARRAY, nested)),
        "version-1": gguf_bytes(version=1),
        "big-endian": b"GGUF" + struct.pack(">IQQ", 3, 0, 0),
        "alignment-0": gguf_bytes(kvs=1, body=kv(b"general.alignment", V.UINT32, struct.pack("<I", 0))),
        "offset-wraps": gguf_bytes(tensors=1, body=tensor + b"\0" * 64),
    }


def main():
    seeds = ROOT / "fuzz" / "corpus"
    fixtures = ROOT / "tests" / "data" / "io"

    tensors, metadata = reference_safetensors()
    write_safetensors(fixtures / "reference.safetensors", tensors, metadata)
    write_json(fixtures / "reference.safetensors.json",
               describe_safetensors(fixtures / "reference.safetensors"))
    write_safetensors(seeds / "safetensors_fuzz" / "mixed.safetensors", tensors, metadata)
    write_safetensors(seeds / "safetensors_fuzz" / "one.safetensors",
                      {"w": random_array((2, 2), np.float32)})
    write_safetensors(seeds / "safetensors_fuzz" / "empty.safetensors", {}, {"k": "v"})

    write_gguf(fixtures / "reference.gguf", GGUF_METADATA, gguf_tensors(), alignment=64)
    write_json(fixtures / "reference.gguf.json",
               describe_gguf(fixtures / "reference.gguf", GGUF_METADATA, 64))
    write_gguf(seeds / "gguf_fuzz" / "mixed.gguf", GGUF_METADATA, gguf_tensors())
    write_gguf(seeds / "gguf_fuzz" / "aligned.gguf", GGUF_METADATA[:2], gguf_tensors()[:2],
               alignment=16)
    write_gguf(seeds / "gguf_fuzz" / "minimal.gguf", [], [])

    for target, inputs in (("safetensors_fuzz", tricky_safetensors()), ("gguf_fuzz", tricky_gguf())):
        folder = ROOT / "fuzz" / "regressions" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in inputs.items():
            (folder / f"tricky-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
