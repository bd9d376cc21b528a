// Choosing a kernel table at run time: the AVX-512 table where the CPU has it, else the AVX2 one,
// else the reference.
#pragma once
#include "kernels/kernels.h"

namespace dsv3 {

// True when this CPU runs the AVX-512 F/BW/VL instructions kernels/cpu is compiled for.
bool cpu_kernels_supported();
// The AVX-512 table ("cpu-avx512"); throws Error where cpu_kernels_supported() is false.
const Kernels& cpu_kernels();
// For CPUs with AVX2 but not AVX-512 ("ref-avx2-int8"): the reference table with the matmuls of
// integer block-format weights (Q8_0, Q4_0, Q4_1) on AVX2; throws Error without AVX2, FMA, F16C.
const Kernels& avx2_kernels();
// cpu_kernels() where supported, else avx2_kernels() where supported, else ref_kernels().
// DSV3_KERNELS=ref in the environment forces the reference table (to compare or to rule the SIMD
// code out while debugging), DSV3_KERNELS=avx2 the AVX2 table where the CPU has AVX2.
const Kernels& best_kernels();

}  // namespace dsv3
