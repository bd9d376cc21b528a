"""safetensors with numpy alone: 8-byte little-endian header length, JSON header, raw data.

Independent of dsv3's C++ reader (tests compare the two). FP8 E4M3 (OCP E4M3FN) and BF16 are
decoded here from their bit patterns.
"""
import json
import os
import struct

import numpy as np

_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
       "F8_E4M3": np.uint8, "I64": np.int64, "I32": np.int32, "I8": np.int8,
       "U8": np.uint8}


def e4m3_table():
    """float64 value of each of the 256 E4M3FN codes (0x7F and 0xFF are NaN)."""
    vals = np.zeros(256)
    for c in range(256):
        s, e, m = c >> 7, (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            v = np.nan
        elif e == 0:
            v = m / 8.0 * 2.0 ** -6
        else:
            v = (1 + m / 8.0) * 2.0 ** (e - 7)
        vals[c] = -v if s else v
    return vals


def read_file(path):
    """{name: (dtype_name, numpy array as stored)}"""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    base = 8 + n
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        s, e = v["data_offsets"]
        arr = np.frombuffer(b[base + s:base + e], dtype=_NP[v["dtype"]]).reshape(v["shape"])
        out[name] = (v["dtype"], arr)
    return out


def read_metadata(path):
    """The header's __metadata__ ({str: str}; {} when absent)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def write_file(path, tensors, metadata=None):
    """tensors: {name: (dtype_name, numpy array already in that storage type)}; metadata: {str: str}
    written as the header's __metadata__."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, (dt, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def read_folder(path):
    """All tensors of a HF folder (one file or an index of shards), as stored."""
    idx = os.path.join(path, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    out = {}
    for f in files:
        out.update(read_file(os.path.join(path, f)))
    return out


def to_f64(dt, arr):
    if dt == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dt == "F8_E4M3":
        return e4m3_table()[arr]
    return arr.astype(np.float64)


def dequantized_f64(tensors):
    """{name: float64 array}, FP8 weights times their 128x128 weight_scale_inv blocks (SPEC §3.2)."""
    out = {}
    for name, (dt, arr) in tensors.items():
        if name.endswith("_scale_inv"):
            continue
        w = to_f64(dt, arr)
        if dt == "F8_E4M3":
            s = tensors[name + "_scale_inv"][1].astype(np.float64)
            full = np.repeat(np.repeat(s, 128, axis=0), 128, axis=1)[:w.shape[0], :w.shape[1]]
            w = w * full
        out[name] = w
    return out


def quantize_e4m3_128x128(w):
    """(codes uint8, scale_inv float32) with amax/448 block scales; nearest code by search."""
    table = e4m3_table()
    pos = table[:127]  # codes 0..126: the non-negative finite values, increasing
    rows, cols = w.shape
    br, bc = -(-rows // 128), -(-cols // 128)
    scale = np.zeros((br, bc), np.float32)
    q = np.zeros(w.shape, np.uint8)
    for i in range(br):
        for j in range(bc):
            blk = w[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128].astype(np.float64)
            s = np.float32(max(np.abs(blk).max(), 1e-4) / 448.0)
            scale[i, j] = s
            x = np.abs(blk / np.float64(s))
            code = np.abs(x[..., None] - pos).argmin(-1).astype(np.uint8)
            code[blk < 0] |= 0x80
            q[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = code
    return q, scale
