// Choosing a kernel table at run time: the AVX-512 table where the CPU has it, else the reference.
#pragma once
#include "kernels/kernels.h"

namespace dsv3 {

// True when this CPU runs the AVX-512 F/BW/VL instructions kernels/cpu is compiled for.
bool cpu_kernels_supported();
// The AVX-512 table ("cpu-avx512"); throws Error where cpu_kernels_supported() is false.
const Kernels& cpu_kernels();
// cpu_kernels() where supported, else ref_kernels(). DSV3_KERNELS=ref in the environment forces the
// reference table (to compare or to rule the SIMD code out while debugging).
const Kernels& best_kernels();

}  // namespace dsv3
