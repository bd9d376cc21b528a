// The machine's roofline, measured: read bandwidth from memory (what decode is bound by: every
// active weight byte is read once per token) and the peak rate of each multiply-add instruction
// family the kernels use (what prefill is bound by). `dsv3 bench --memory` prints these and the
// fraction of them a model reaches. Probes of the instructions this CPU lacks report 0.
#pragma once
#include <cstdint>
#include <string>

#include "base/thread_pool.h"

namespace dsv3 {

struct MachinePeaks {
  int threads = 1;                        // the pool's size: the "N threads" figures
  uint64_t buffer_bytes = 0;              // the bandwidth probe's buffer
  double read_gbs_1 = 0, read_gbs_n = 0;  // GB/s (1e9 bytes), 1 thread and `threads`
  // Register-only loops of independent instructions on `threads` threads, GFLOP/s (a multiply-add
  // is 2): FP32 FMA (vfmadd231ps zmm), BF16 dot products (vdpbf16ps zmm), AMX BF16 tiles
  // (tdpbf16ps), INT8 dot products (vpdpbusd zmm, GOP/s) and AMX INT8 tiles (tdpbssd).
  double f32_fma = 0, bf16_dot = 0, amx_bf16 = 0, int8_vnni = 0, amx_int8 = 0;
  // The fastest BF16 path the inference matmuls take here, GFLOP/s (amx_bf16, else bf16_dot, else
  // f32_fma), and its name.
  double bf16_peak() const;
  std::string bf16_path() const;
};

// Runs every probe (about 2-4 s): bandwidth over a buffer of `buffer_bytes`, or when 0 of
// max(1 GiB, 4 x the last-level cache) capped at 4 GiB, best of a few passes.
MachinePeaks measure_machine_peaks(ThreadPool& pool, uint64_t buffer_bytes = 0);

}  // namespace dsv3
