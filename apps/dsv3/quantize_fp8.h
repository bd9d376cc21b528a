// FP8 quantization of checkpoints (SPEC §3.2, §3.1), the library half of `dsv3 quantize`:
//   quantize_folder_fp8  a BF16/F32 (or FP8) deepseek_v3 folder -> DeepSeek's FP8 release format:
//                        exactly the tensors the official release quantizes (every Linear weight
//                        but embed_tokens, lm_head, norms, mlp.gate, the gate's F32 bias, eh_proj
//                        and shared_head) as F8_E4M3 + NAME_scale_inv F32 per 128x128 block, the
//                        rest BF16, quantization_config in config.json, other config values kept
//   quantize_file_1x128  one safetensors file: each 2-D F32 tensor NAME -> NAME (F8_E4M3) +
//                        NAME_scale_inv (F32 [rows, ceil(cols/128)]) with the activation
//                        quantizer (1x128 tiles, s = max(amax, 1e-4)/448, q = e4m3(x / s); UE8M0
//                        power-of-two scales with pow2), other tensors copied: the training
//                        recipe's quantizer checked from outside (tests/ref/fp8_ref.py)
#pragma once
#include <string>

namespace dsv3::cli {

void quantize_folder_fp8(const std::string& in, const std::string& out, bool force);
// Returns the number of tensors quantized.
int quantize_file_1x128(const std::string& in, const std::string& out, bool pow2);

}  // namespace dsv3::cli
