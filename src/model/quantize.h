// Block quantization of a whole model (dsv3 quantize; docs/QUANTIZATION.md): which block format
// each tensor gets under a recipe, and the writer of the quantized HF folder.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/thread_pool.h"
#include "model/param_store.h"
#include "tensor/block_format.h"

namespace dsv3 {

// The recipes of dsv3 quantize --type:
//   bf16      every matrix BF16 (no blocks; as dsv3 convert --dtype bf16)
//   q8_0      every quantizable matrix Q8_0
//   q4_0      every quantizable matrix Q4_0, the embedding and the LM head included (the seed's
//             recipe: 4-bit everywhere)
//   q4_mixed  the FFNs (dense MLPs, routed and shared experts: most of the bytes a token reads)
//             Q4_1, everything else quantizable (attention projections, embedding, LM head, MTP
//             eh_proj) Q8_0: attention and the head are the most sensitive to error, and Q4_1's
//             minimum follows a block's offset that Q4_0's symmetric grid wastes half a code on
// Quantizable: a matrix with a multiple of 32 columns, other than the MoE router (mlp.gate: kept
// BF16, a flipped expert choice costs more than its few bytes save) and keep_f32 tensors.
enum class QuantType { BF16, Q8_0, Q4_0, Q4_Mixed };

std::optional<QuantType> quant_type_from_name(std::string_view name);  // "q8_0" -> Q8_0
const char* quant_type_name(QuantType t);

// The block format of `p` under `t`; nullopt: stored as ParamStore::save(dir, BF16) stores it.
std::optional<BlockFormat> quant_format_for(const ParamSpec& p, QuantType t);

// Bytes write_quantized_model puts on disk for the tensors (headers excluded).
uint64_t quantized_model_bytes(const ParamStore& store, QuantType t);

// Writes `store`'s model into `dir` (config.json with quantization_config, safetensors sharded
// above 2 GB, every tensor under its own name, MTP copies as copies), quantizing each matrix
// from its FP32 values (an already quantized input is dequantized first) on `pool`. Shows a
// progress bar.
void write_quantized_model(const ParamStore& store, const std::string& dir, QuantType t,
                           ThreadPool& pool);

}  // namespace dsv3
