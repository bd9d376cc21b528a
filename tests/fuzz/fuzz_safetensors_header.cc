// libFuzzer target: parse_safetensors_header on arbitrary bytes (RELIABILITY §1: fuzz every
// parser). A dsv3::Error is the expected outcome for bad input; any other exception, a sanitizer
// report, or an accepted header whose tensors do not lie inside the file is a crash.
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/error.h"
#include "tensor/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    const dsv3::SafetensorsHeader h = dsv3::parse_safetensors_header(file, "fuzz input");
    if (h.data_offset > size) __builtin_trap();
    const uint64_t data_size = size - h.data_offset;
    for (const auto& t : h.tensors)
      if (t.offset > data_size || t.nbytes > data_size - t.offset) __builtin_trap();
  } catch (const dsv3::Error&) {
  }
  return 0;
}
