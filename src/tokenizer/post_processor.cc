#include "tokenizer/post_processor.h"

#include "base/error.h"
#include "base/json.h"

namespace dsv3::tok {

namespace {

int32_t checked_id(const Json& v, int32_t id_limit, const std::string& what) {
  const int64_t id = v.as_int(what);
  DSV3_CHECK(id >= 0 && id < id_limit,
             what + " " + std::to_string(id) + " is not a token id of this tokenizer",
             "the vocabulary and added tokens have ids 0 .. " + std::to_string(id_limit - 1));
  return static_cast<int32_t>(id);
}

// TemplateProcessing "single": [{"SpecialToken": {"id": NAME, "type_id": 0}},
// {"Sequence": {"id": "A", "type_id": 0}}, ...]; NAME indexes "special_tokens", whose "ids" (one or
// more) are inserted.
SpecialTokenFrame template_frame(const Json& pp, int32_t id_limit, const std::string& what) {
  const Json& specials = pp.at("special_tokens");
  DSV3_CHECK(specials.is_object(), what + ".special_tokens: not an object");
  SpecialTokenFrame f;
  bool seen_a = false;
  for (const Json& piece : pp.at("single").as_array(what + ".single")) {
    if (const Json* seq = piece.find("Sequence")) {
      const std::string& id = seq->at("id").as_string(what + ".single[].Sequence.id");
      DSV3_CHECK(id == "A" && !seen_a,
                 what + ".single: sequence '" + id + "' in a single-sequence template",
                 "the single template holds $A exactly once");
      seen_a = true;
      continue;
    }
    const Json* sp = piece.find("SpecialToken");
    DSV3_CHECK(sp != nullptr, what + ".single[]: neither SpecialToken nor Sequence");
    const std::string& name = sp->at("id").as_string(what + ".single[].SpecialToken.id");
    const Json* entry = specials.find(name);
    DSV3_CHECK(entry != nullptr,
               what + ".single: special token '" + name + "' is missing from special_tokens");
    std::vector<int32_t>& out = seen_a ? f.suffix : f.prefix;
    for (const Json& id : entry->at("ids").as_array(what + ".special_tokens." + name + ".ids"))
      out.push_back(checked_id(id, id_limit, what + ".special_tokens." + name + ".ids[]"));
  }
  DSV3_CHECK(seen_a, what + ".single has no $A sequence");
  return f;
}

// BertProcessing / RobertaProcessing: "cls": [TOKEN, ID], "sep": [TOKEN, ID]; single is cls $A sep.
SpecialTokenFrame cls_sep_frame(const Json& pp, int32_t id_limit, const std::string& what) {
  auto id_of = [&](const char* key) {
    const Json& pair = pp.at(key);
    DSV3_CHECK(pair.is_array() && pair.size() == 2, what + "." + key + ": not a [token, id] pair");
    return checked_id(pair.as_array()[1], id_limit, what + "." + key + "[1]");
  };
  return {{id_of("cls")}, {id_of("sep")}};
}

// Sets frame from pp. added: whether an earlier processor of the Sequence added tokens already.
void apply(const Json& pp, int32_t id_limit, const std::string& what, SpecialTokenFrame& frame,
           bool& added) {
  const std::string& type = pp.at("type").as_string(what + ".type");
  if (type == "Sequence") {
    for (const Json& p : pp.at("processors").as_array(what + ".processors"))
      apply(p, id_limit, what + ".processors[]", frame, added);
    return;
  }
  if (type == "ByteLevel") return;  // adjusts offsets only
  DSV3_CHECK(
      type == "TemplateProcessing" || type == "BertProcessing" || type == "RobertaProcessing",
      what + " type '" + type + "' is not supported",
      "dsv3 supports TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel and "
      "Sequence");
  // The Hugging Face library (0.23) stops with "not yet implemented" on a second one.
  DSV3_CHECK(!added, what + ": a second token-adding processor (" + type + ") in a Sequence",
             "the Hugging Face tokenizers library does not support this either");
  added = true;
  frame = type == "TemplateProcessing" ? template_frame(pp, id_limit, what)
                                       : cls_sep_frame(pp, id_limit, what);
}

}  // namespace

SpecialTokenFrame post_processor_from_json(const Json* pp, int32_t id_limit,
                                           const std::string& where) {
  SpecialTokenFrame frame;
  bool added = false;
  if (pp && !pp->is_null()) apply(*pp, id_limit, where + ": post_processor", frame, added);
  return frame;
}

}  // namespace dsv3::tok
