// best_kernels(): the fastest table this CPU runs, chosen once at run time.
#include "kernels/best_kernels.h"

#include <cstdlib>
#include <cstring>

namespace dsv3 {

const Kernels& best_kernels() {
  static const Kernels& k = [&]() -> const Kernels& {
    const char* force = std::getenv("DSV3_KERNELS");
    if (force != nullptr && std::strcmp(force, "ref") == 0) return ref_kernels();
    return cpu_kernels_supported() ? cpu_kernels() : ref_kernels();
  }();
  return k;
}

}  // namespace dsv3
