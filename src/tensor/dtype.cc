#include "tensor/dtype.h"

#include <array>
#include <limits>

#include "base/error.h"

namespace dsv3 {
namespace {

struct DTypeRow {
  DType type;
  std::string_view name;
  size_t size;
  bool is_float;
};

// Names as the safetensors format spells them.
constexpr std::array<DTypeRow, 12> kDTypes{{
    {DType::F64, "F64", 8, true},
    {DType::F32, "F32", 4, true},
    {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true},
    {DType::F8_E4M3, "F8_E4M3", 1, true},
    {DType::F8_E5M2, "F8_E5M2", 1, true},
    {DType::I64, "I64", 8, false},
    {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},
    {DType::I8, "I8", 1, false},
    {DType::U8, "U8", 1, false},
    {DType::BOOL, "BOOL", 1, false},
}};

const DTypeRow& row(DType t) {
  auto i = static_cast<size_t>(t);
  DSV3_CHECK(i < kDTypes.size(), "invalid DType value " + std::to_string(i));
  return kDTypes[i];
}

}  // namespace

size_t dtype_size(DType t) {
  return row(t).size;
}
std::string_view dtype_name(DType t) {
  return row(t).name;
}
bool dtype_is_float(DType t) {
  return row(t).is_float;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& r : kDTypes)
    if (r.name == name) return r.type;
  return std::nullopt;
}

int64_t shape_numel(const Shape& s) {
  constexpr int64_t kMax = int64_t{1} << 62;
  int64_t n = 1;
  for (int64_t d : s) {
    DSV3_CHECK(d >= 0, "negative dimension in shape " + shape_str(s));
    // A zero anywhere makes the product 0, but every prefix must still stay in range.
    if (d != 0 && n > kMax / d)
      throw Error("shape " + shape_str(s) + " has more than 2^62 elements");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

}  // namespace dsv3
