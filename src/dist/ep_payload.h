// How MoE rows travel between expert-parallel ranks (SPEC §3.1 "Comm", TR §3.3.3): the wire
// format of one all-to-all's rows [n, d].
//   F32   the values as they are (bit-exact expert parallelism)
//   BF16  rounded to nearest even: V3's combine, forward and backward (2 B a value)
//   FP8   E4M3 codes in 1x128 tiles with power-of-two scales, each scale sent as its exponent
//         byte (UE8M0): V3's dispatch, the activations before the up-projections and the
//         activation gradients before the down-projections (d + ceil(d/128) B a row)
// Decoding gives the values the receiver computes with; the sender's own rows are encoded too,
// so a token's result does not depend on which rank holds its experts.
#pragma once
#include <cstdint>
#include <string>

namespace dsv3 {

enum class EpPayload : uint8_t { F32, BF16, FP8 };

// "fp32", "bf16", "fp8"; Error otherwise.
EpPayload parse_ep_payload(const std::string& name);
const char* ep_payload_name(EpPayload p);

// Bytes of one row of d values on the wire.
int64_t payload_row_bytes(EpPayload p, int64_t d);
// rows [n, d] -> out [n, payload_row_bytes(p, d)] and back.
void encode_rows(EpPayload p, const float* rows, int64_t n, int64_t d, uint8_t* out);
void decode_rows(EpPayload p, const uint8_t* in, int64_t n, int64_t d, float* rows);

}  // namespace dsv3
