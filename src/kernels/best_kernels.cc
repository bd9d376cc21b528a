// best_kernels(): the fastest table this CPU runs, chosen once at run time.
#include "kernels/best_kernels.h"

#include <cstdlib>
#include <cstring>

#include "kernels/cpu/cpu.h"

namespace dsv3 {

const Kernels& best_kernels() {
  static const Kernels& k = [&]() -> const Kernels& {
    const char* force = std::getenv("DSV3_KERNELS");
    if (force != nullptr && std::strcmp(force, "ref") == 0) return ref_kernels();
    if (force != nullptr && std::strcmp(force, "avx2") == 0 && cpu::avx2_supported())
      return avx2_kernels();
    if (cpu_kernels_supported()) return cpu_kernels();
    return cpu::avx2_supported() ? avx2_kernels() : ref_kernels();
  }();
  return k;
}

}  // namespace dsv3
