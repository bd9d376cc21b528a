// MoE row payloads: see ep_payload.h.
#include "dist/ep_payload.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "tensor/fp8_tiles.h"
#include "tensor/half.h"

namespace dsv3 {

namespace {

constexpr int64_t kTile = 128;  // SPEC §3.1: 1x128 activation tiles

int64_t tiles(int64_t d) {
  return (d + kTile - 1) / kTile;
}

}  // namespace

EpPayload parse_ep_payload(const std::string& name) {
  if (name == "fp32") return EpPayload::F32;
  if (name == "bf16") return EpPayload::BF16;
  if (name == "fp8") return EpPayload::FP8;
  throw Error("expert parallel: payload '" + name + "' is not known", "use fp32, bf16 or fp8");
}

const char* ep_payload_name(EpPayload p) {
  return p == EpPayload::F32 ? "fp32" : p == EpPayload::BF16 ? "bf16" : "fp8";
}

int64_t payload_row_bytes(EpPayload p, int64_t d) {
  return p == EpPayload::F32 ? 4 * d : p == EpPayload::BF16 ? 2 * d : d + tiles(d);
}

void encode_rows(EpPayload p, const float* rows, int64_t n, int64_t d, uint8_t* out) {
  if (p == EpPayload::F32) {
    std::memcpy(out, rows, static_cast<size_t>(n * d) * sizeof(float));
    return;
  }
  if (p == EpPayload::BF16) {
    std::vector<uint16_t> h(static_cast<size_t>(n * d));
    f32_to_bf16(rows, h.data(), n * d);
    std::memcpy(out, h.data(), h.size() * sizeof(uint16_t));
    return;
  }
  Fp8Tiles t;
  quantize_e4m3_tiles(rows, n, d, d, 1, kTile, /*pow2=*/true, t);
  const int64_t nt = tiles(d), row = payload_row_bytes(p, d);
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* o = out + r * row;
    std::memcpy(o, t.q.data() + r * d, static_cast<size_t>(d));
    for (int64_t k = 0; k < nt; ++k) {
      // A power of two 2^e, sent as e + 127 (UE8M0); tile_scale keeps e well inside [-127, 127].
      const int e = std::ilogb(t.scale[static_cast<size_t>(r * nt + k)]);
      o[d + k] = static_cast<uint8_t>(e + 127);
    }
  }
}

void decode_rows(EpPayload p, const uint8_t* in, int64_t n, int64_t d, float* rows) {
  if (p == EpPayload::F32) {
    std::memcpy(rows, in, static_cast<size_t>(n * d) * sizeof(float));
    return;
  }
  if (p == EpPayload::BF16) {
    std::vector<uint16_t> h(static_cast<size_t>(n * d));
    std::memcpy(h.data(), in, h.size() * sizeof(uint16_t));
    bf16_to_f32(h.data(), rows, n * d);
    return;
  }
  Fp8Tiles t;
  t.rows = n;
  t.cols = d;
  t.br = 1;
  t.bc = kTile;
  const int64_t nt = tiles(d), row = payload_row_bytes(p, d);
  t.q.resize(static_cast<size_t>(n * d));
  t.scale.resize(static_cast<size_t>(n * nt));
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* i = in + r * row;
    std::memcpy(t.q.data() + r * d, i, static_cast<size_t>(d));
    for (int64_t k = 0; k < nt; ++k)
      t.scale[static_cast<size_t>(r * nt + k)] = std::ldexp(1.0f, static_cast<int>(i[d + k]) - 127);
  }
  dequantize_e4m3_tiles(t, rows);
}

}  // namespace dsv3
