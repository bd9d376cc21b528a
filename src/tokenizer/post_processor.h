// tokenizer.json's post_processor, for single sequences: the special tokens that encode puts before
// and after the text when special tokens are requested (what the Hugging Face tokenizers library
// adds with add_special_tokens=true).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsv3 {
class Json;
}

namespace dsv3::tok {

struct SpecialTokenFrame {
  std::vector<int32_t> prefix, suffix;
};

// pp: the "post_processor" value (null or absent: no tokens). Supported: TemplateProcessing (its
// "single" template), BertProcessing and RobertaProcessing ([cls] $A [sep]), ByteLevel (offsets
// only: no tokens) and a Sequence of these holding at most one that adds tokens (the Hugging Face
// library panics on two). Ids must be below id_limit. Throws Error naming `where` and the field
// otherwise.
SpecialTokenFrame post_processor_from_json(const Json* pp, int32_t id_limit,
                                           const std::string& where);

}  // namespace dsv3::tok
