// The integer block formats (Q8_0, Q4_0, Q4_1; tensor/block_format.h) in the kernels: round trips
// within each format's error bound, the activation quantizer, ref::qmatmul_heads against float64,
// every SIMD version this CPU runs (AVX-512 VNNI, AVX2) against ref::qmatmul_heads, the cpu
// table's matmul against float64 with unquantized activations, and row independence (a prefill
// row equals its decode bit for bit; a head of matmul_heads equals matmul on its slice). The
// codecs themselves are checked bit for bit against an independent numpy implementation by the
// ctest quant_ref_* (tests/ref/quant_ref.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/quant_acts.h"
#include "kernels/ref/ref.h"
#include "tensor/half.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::gamma;

constexpr BlockFormat kFormats[] = {BlockFormat::Q8_0, BlockFormat::Q4_0, BlockFormat::Q4_1};

struct QWeight {
  std::vector<uint8_t> q;
  std::vector<uint16_t> d, m;
  std::vector<float> value;  // [rows, cols] dequantized
  WeightRef ref;
};

// Random normal rows (with a per-row offset, so Q4_1's minimum matters) quantized by the codec.
QWeight make_qweight(BlockFormat f, int64_t rows, int64_t cols, uint64_t seed) {
  const BlockFormatTraits& t = block_format_traits(f);
  QWeight w;
  auto x = test::randn(rows * cols, seed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) x[r * cols + j] = 0.02f * x[r * cols + j] + 0.01f * (r % 3);
  const int64_t blocks = cols / 32;
  w.q.resize(rows * t.quant_row_bytes(cols));
  w.d.resize(rows * blocks);
  w.m.resize(rows * blocks);
  for (int64_t r = 0; r < rows; ++r)
    t.quantize_row(x.data() + r * cols, cols, w.q.data() + r * t.quant_row_bytes(cols),
                   w.d.data() + r * blocks, w.m.data() + r * blocks);
  w.ref.dtype = t.quant_dtype;
  w.ref.data = w.q.data();
  w.ref.rows = rows, w.ref.cols = cols;
  w.ref.quant = &t;
  w.ref.block_scale = w.d.data();
  w.ref.block_min = t.has_min ? w.m.data() : nullptr;
  w.value.resize(rows * cols);
  weight_block_f32(w.ref, 0, rows, 0, cols, w.value.data());
  return w;
}

TEST(BlockFormats, RoundTripWithinBound) {
  // Per block: |x - x̂| <= d / 2 for q8_0 and q4_1 (rint to the stored scale; the f16 rounding of
  // the scale can push the extreme value past the grid by at most 127 * d * 2^-11 < d / 2 and
  // q4_1's f16 minimum likewise), and <= |d| for q4_0, whose grid reaches -8 d on the side of the
  // largest magnitude but only 7 d on the other. A 1e-6 relative slack covers the float32 products.
  for (BlockFormat f : kFormats) {
    const int64_t cols = 256;
    QWeight w = make_qweight(f, 4, cols, 11);
    auto x = test::randn(4 * cols, 11);
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t j = 0; j < cols; ++j)
        x[r * cols + j] = 0.02f * x[r * cols + j] + 0.01f * (r % 3);
    for (int64_t i = 0; i < 4 * cols; ++i) {
      const double d = std::fabs(f16_to_f32(w.d[i / 32]));
      const double bound = (f == BlockFormat::Q4_0 ? 1.0 : 0.5) * d * (1 + 1e-6) + 1e-12;
      ASSERT_LE(std::fabs(x[i] - w.value[i]), bound) << block_format_traits(f).name << " " << i;
    }
  }
}

TEST(BlockFormats, TableSizes) {
  EXPECT_EQ(block_format_traits(BlockFormat::Q8_0).bits_per_value(), 8.5);
  EXPECT_EQ(block_format_traits(BlockFormat::Q4_0).bits_per_value(), 4.5);
  EXPECT_EQ(block_format_traits(BlockFormat::Q4_1).bits_per_value(), 5.0);
  EXPECT_EQ(block_format_traits(BlockFormat::BF16).bits_per_value(), 16.0);
  EXPECT_EQ(block_format_from_name("q4_1"), BlockFormat::Q4_1);
  EXPECT_FALSE(block_format_from_name("q5_k").has_value());
}

TEST(QuantActs, EachRowWithinHalfAStep) {
  const int64_t K = 96;  // a half 64-step at the end: padded with zeros
  auto x = test::randn(2 * K, 5);
  x[K + 7] = std::nanf("");
  QuantActs a;
  a.reshape(2, K);
  a.quantize_row(0, x.data());
  a.quantize_row(1, x.data() + K);
  for (int64_t b = 0; b < K / 32; ++b) {
    double amax = 0;
    for (int64_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(double(x[b * 32 + i])));
    const float d = a.d_row(0)[b * 8];
    EXPECT_EQ(d, static_cast<float>(amax) / 127.0f);
    for (int64_t i = 0; i < 32; ++i)
      ASSERT_LE(std::fabs(x[b * 32 + i] - d * a.q_row(0)[b * 32 + i]), 0.5 * d * (1 + 1e-6));
  }
  for (int64_t i = K; i < a.Kp; ++i) EXPECT_EQ(a.q_row(0)[i], 0);
  EXPECT_TRUE(std::isnan(a.d_row(1)[0]));  // a row with a NaN: NaN outputs, as in float
}

TEST(QuantActs, Avx512RowIsTheScalarRowBitForBit) {
  // cpu::quantize_acts_row against QuantActs::quantize_row on every field: blocks of different
  // magnitudes (one of subnormals, whose scale rounds to 0: q = 0), an all-zero block, a half
  // 64-step at the end (K = 160), values at exact half steps (ties to even), a row with an
  // infinity and one with a NaN.
  REQUIRE_AVX512();
  const int64_t K = 160, rows = 5;
  auto x = test::randn(rows * K, 21);
  for (int64_t i = 0; i < rows * K; ++i)
    x[i] *= std::pow(10.0f, static_cast<float>(i / 32 % 5) - 2);
  for (int64_t i = 32; i < 64; ++i) x[i] = 1e-44f * static_cast<float>(i % 7);
  for (int64_t i = 64; i < 96; ++i) x[i] = 0;
  for (int64_t i = 0; i < 32; ++i)
    x[K + i] = 0.5f * static_cast<float>(i) - 8.0f;  // d = 15.5 / 127
  for (int64_t i = 32; i < 64; ++i)
    x[K + i] = 2.5f * static_cast<float>(i % 5) - 5.0f + (i == 33 ? 127 : 0);
  x[3 * K + 17] = INFINITY;
  x[4 * K + 150] = std::nanf("");
  QuantActs s, v;
  s.reshape(rows, K);
  v.reshape(rows, K);
  for (int64_t r = 0; r < rows; ++r) {
    s.quantize_row(r, x.data() + r * K);
    cpu::quantize_acts_row(v, r, x.data() + r * K);
  }
  EXPECT_EQ(0, std::memcmp(s.q.data(), v.q.data(), rows * s.Kp));
  EXPECT_EQ(0, std::memcmp(s.d.data(), v.d.data(), rows * s.Kp));  // Kp / 4 floats a row
  EXPECT_EQ(0, std::memcmp(s.neg8.data(), v.neg8.data(), rows * s.Kp));
  EXPECT_EQ(0, std::memcmp(s.dsum.data(), v.dsum.data(), rows * s.Kp));
  EXPECT_NE(0, s.q_row(1)[40]);  // the tie block is not all zeros
}

// float64 of what ref::qmatmul_heads computes (dequantized weights times dequantized
// activations) and the magnitude S of its terms (Q4_1: the scale and minimum terms apart).
void exact_qdot(const QWeight& w, const QuantActs& a, int64_t t, int64_t r, double* y, double* s) {
  const int64_t K = w.ref.cols;
  const bool q41 = w.ref.quant->format == BlockFormat::Q4_1;
  *y = 0, *s = 0;
  for (int64_t b = 0; b < K / 32; ++b) {
    const double dx = a.d_row(t)[b * 8];
    double dot = 0, xs = 0;
    for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
      const double xq = a.q_row(t)[i];
      dot += double(w.value[r * K + i]) * xq;
      xs += xq;
    }
    *y += dot * dx;
    const double mw = q41 ? f16_to_f32(w.m[r * (K / 32) + b]) : 0;
    *s += std::fabs((dot - mw * xs) * dx) + std::fabs(mw * xs * dx);
  }
}

struct Shape3 {
  int64_t rows, cols, T;
};
// Row counts off the 16 / 8 / 4 tiles, K with a half 64-step (96, 160), T around the 4-row tile,
// one case above the 2^17 multiply-adds of the single-thread cutoff, one of three token tiles
// (AMX: 16 + 16 + 3) against a whole 64-row panel, K = 1568 three 16-block chunks of scales and
// one block, K = 2144 two chunks of K in the VNNI panel (64 blocks and 3) with T = 16 + 4.
const Shape3 kShapes[] = {{37, 96, 1},   {21, 160, 5},  {16, 512, 3},  {130, 1024, 17},
                          {64, 320, 35}, {19, 1568, 6}, {40, 2144, 20}};

TEST(Qmatmul, RefMatchesDouble) {
  // The integer block sums are exact; per block two or three float32 roundings (dw * dx, the
  // product, the sum), so |y - exact| <= gamma(3 * blocks + 3) * S.
  ThreadPool pool(1);
  for (BlockFormat f : kFormats)
    for (const Shape3& s : kShapes) {
      QWeight w = make_qweight(f, s.rows, s.cols, 100 + s.cols);
      const auto x = test::randn(s.T * s.cols, 7);
      std::vector<float> y(s.T * s.rows);
      ref::qmatmul_heads(ref::one_head(y.data(), s.rows, x.data(), s.cols, w.ref, s.T), pool);
      QuantActs a;
      a.reshape(s.T, s.cols);
      for (int64_t t = 0; t < s.T; ++t) a.quantize_row(t, x.data() + t * s.cols);
      for (int64_t t = 0; t < s.T; ++t)
        for (int64_t r = 0; r < s.rows; ++r) {
          double e, mag;
          exact_qdot(w, a, t, r, &e, &mag);
          ASSERT_LE(std::fabs(y[t * s.rows + r] - e), gamma(3 * s.cols / 32 + 3) * mag + 1e-30)
              << block_format_traits(f).name << " t " << t << " r " << r;
        }
    }
}

using QFn = void (*)(const HeadMatmulArgs&, ThreadPool&);
struct Isa {
  const char* name;
  QFn fn;
  bool ok;
};
std::vector<Isa> isas() {
  return {{"amx-int8", cpu::qmatmul_heads_amx, cpu::amx_int8_supported()},
          {"avx512-vnni", cpu::qmatmul_heads_vnni, cpu::avx512_vnni_supported()},
          {"avx512-vnni-no-gfni", cpu::qmatmul_heads_vnni_no_gfni, cpu::avx512_vnni_supported()},
          {"avx2", cpu::qmatmul_heads_avx2, cpu::avx2_supported()}};
}

TEST(Qmatmul, SimdMatchesRefAndRowsAreIndependent) {
  ThreadPool pool(2);
  int ran = 0;
  for (const Isa& isa : isas()) {
    if (!isa.ok) continue;
    ++ran;
    for (BlockFormat f : kFormats)
      for (const Shape3& s : kShapes) {
        const std::string where = std::string(isa.name) + " " + block_format_traits(f).name +
                                  " rows " + std::to_string(s.rows) + " K " +
                                  std::to_string(s.cols) + " T " + std::to_string(s.T);
        QWeight w = make_qweight(f, s.rows, s.cols, 200 + s.rows);
        const auto x = test::randn(s.T * s.cols, 9 + s.T);
        std::vector<float> y(s.T * s.rows), yr(s.T * s.rows);
        isa.fn(ref::one_head(y.data(), s.rows, x.data(), s.cols, w.ref, s.T), pool);
        ref::qmatmul_heads(ref::one_head(yr.data(), s.rows, x.data(), s.cols, w.ref, s.T), pool);
        QuantActs a;
        a.reshape(s.T, s.cols);
        for (int64_t t = 0; t < s.T; ++t) a.quantize_row(t, x.data() + t * s.cols);
        for (int64_t t = 0; t < s.T; ++t) {
          // Same integer sums, float sums in another order: both within gamma(3 blocks + 20) S
          // of the exact value (16 lanes reduced in a tree add a few more roundings).
          for (int64_t r = 0; r < s.rows; ++r) {
            double e, mag;
            exact_qdot(w, a, t, r, &e, &mag);
            ASSERT_LE(std::fabs(y[t * s.rows + r] - yr[t * s.rows + r]),
                      2 * gamma(3 * s.cols / 32 + 20) * mag + 1e-30)
                << where << " t " << t << " r " << r;
          }
          // Row independence: row t alone (decode) gives the batch's numbers bit for bit.
          std::vector<float> one(s.rows);
          isa.fn(ref::one_head(one.data(), s.rows, x.data() + t * s.cols, s.cols, w.ref, 1), pool);
          ASSERT_EQ(0, std::memcmp(one.data(), y.data() + t * s.rows, s.rows * sizeof(float)))
              << where << ": decode != prefill at row " << t;
        }
      }
  }
  if (ran == 0) GTEST_SKIP() << "neither AVX-512 VNNI nor AVX2 on this CPU";
}

TEST(Qmatmul, CpuTableMatchesFloatWithinActivationBound) {
  // The cpu table's matmul on a quantized weight against float64 of the dequantized weight times
  // the float activations: activation quantization moves each x by at most dx / 2, so
  // |y - exact| <= Σ_b dx_b / 2 * Σ_i∈b |w_i| + the float bound. The heads version's heads equal
  // matmul on their slices bit for bit.
  REQUIRE_AVX512();
  const Kernels& k = cpu_kernels();
  ThreadPool pool(2);
  for (BlockFormat f : kFormats) {
    const int64_t rows = 48, K = 320, T = 6;
    QWeight w = make_qweight(f, rows, K, 300);
    const auto x = test::randn(T * K, 13);
    std::vector<float> y(T * rows);
    k.matmul(y.data(), x.data(), w.ref, T, pool);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        double e = 0, bound = 0, mag = 0;
        for (int64_t b = 0; b < K / 32; ++b) {
          double amax = 0, wabs = 0;
          for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
            e += double(w.value[r * K + i]) * x[t * K + i];
            mag += std::fabs(double(w.value[r * K + i]) * x[t * K + i]);
            amax = std::max(amax, std::fabs(double(x[t * K + i])));
            wabs += std::fabs(double(w.value[r * K + i]));
          }
          bound += amax / 127 / 2 * wabs * (1 + 1e-6);
        }
        ASSERT_LE(std::fabs(y[t * rows + r] - e), bound + 2 * gamma(3 * K / 32 + 20) * 2 * mag)
            << block_format_traits(f).name << " t " << t << " r " << r;
      }
    // Three heads of 16 rows each.
    HeadMatmulArgs a;
    a.w = &w.ref, a.n_heads = 3, a.w_head_stride = 16, a.w_rows = 16, a.T = 2;
    a.x = x.data(), a.x_head_stride = 0, a.x_row_stride = K;
    std::vector<float> yh(2 * 48);
    a.y = yh.data(), a.y_head_stride = 16, a.y_row_stride = 48;
    k.matmul_heads(a, pool);
    for (int64_t h = 0; h < 3; ++h) {
      const WeightRef s = slice_rows(w.ref, 16 * h, 16);
      std::vector<float> one(2 * 16);
      k.matmul(one.data(), x.data(), s, 2, pool);
      for (int64_t t = 0; t < 2; ++t)
        ASSERT_EQ(0, std::memcmp(one.data() + t * 16, yh.data() + t * 48 + h * 16, 16 * 4));
    }
  }
}

TEST(Qmatmul, Avx2TableRunsTheAvx2Kernel) {
  // The table for CPUs without AVX-512: quantized weights through the AVX2 kernel (bit for bit),
  // the rest through ref.
  if (!cpu::avx2_supported()) GTEST_SKIP() << "no AVX2 on this CPU";
  const Kernels& k = avx2_kernels();
  ThreadPool pool(2);
  QWeight w = make_qweight(BlockFormat::Q4_1, 20, 128, 500);
  const auto x = test::randn(3 * 128, 17);
  std::vector<float> y(3 * 20), ya(3 * 20);
  k.matmul(y.data(), x.data(), w.ref, 3, pool);
  cpu::qmatmul_heads_avx2(ref::one_head(ya.data(), 20, x.data(), 128, w.ref, 3), pool);
  EXPECT_EQ(0, std::memcmp(y.data(), ya.data(), y.size() * sizeof(float)));
  test::TestWeight f = test::make_weight(DType::BF16, 20, 128, 501);
  k.matmul(y.data(), x.data(), f.ref, 3, pool);
  ref_kernels().matmul(ya.data(), x.data(), f.ref, 3, pool);
  EXPECT_EQ(0, std::memcmp(y.data(), ya.data(), y.size() * sizeof(float)));
}

TEST(Qmatmul, BatchEqualsEachMatmulAlone) {
  // matmul_batch of every table against the same table's matmul per job, bit for bit: decode jobs
  // on Q8_0 and Q4_0 (the GEMV batch: gate and up sharing an x, then the same shape on another x,
  // rows not a multiple of 16, T up to 3, K 96 with a partial 4-block step), then batches the GEMV
  // does not take (a Q4_1 job, a BF16 one, T = 5) in turn.
  std::vector<const Kernels*> tables = {&ref_kernels(), &best_kernels()};
  if (cpu::avx2_supported()) tables.push_back(&avx2_kernels());
  if (cpu_kernels_supported()) tables.push_back(&cpu_kernels());
  ThreadPool pool(3);
  QWeight g = make_qweight(BlockFormat::Q4_0, 40, 96, 601),
          u = make_qweight(BlockFormat::Q8_0, 40, 96, 602),
          d = make_qweight(BlockFormat::Q4_0, 96, 64, 603),
          q41 = make_qweight(BlockFormat::Q4_1, 24, 96, 604);
  test::TestWeight bf = test::make_weight(DType::BF16, 24, 96, 605);
  const auto x1 = test::randn(3 * 96, 21), x2 = test::randn(5 * 96, 22),
             x3 = test::randn(3 * 64, 23);
  struct Case {
    const WeightRef* w;
    const float* x;
    int64_t T;
  };
  const std::vector<std::vector<Case>> batches = {
      {{&g.ref, x1.data(), 1},
       {&u.ref, x1.data(), 1},
       {&u.ref, x2.data(), 1},
       {&d.ref, x3.data(), 1}},
      {{&g.ref, x1.data(), 3},
       {&u.ref, x1.data(), 3},
       {&d.ref, x3.data(), 2},
       {&g.ref, x2.data(), 2}},
      {{&g.ref, x1.data(), 1}, {&q41.ref, x1.data(), 1}},
      {{&bf.ref, x1.data(), 2}, {&g.ref, x2.data(), 5}}};
  for (const Kernels* k : tables)
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      const auto& b = batches[bi];
      std::vector<std::vector<float>> y(b.size()), alone(b.size());
      std::vector<MatmulJob> jobs;
      for (size_t i = 0; i < b.size(); ++i) {
        y[i].assign(b[i].T * b[i].w->rows, -1.0f);
        alone[i].assign(b[i].T * b[i].w->rows, -2.0f);
        jobs.push_back({y[i].data(), b[i].x, b[i].w, b[i].T});
        k->matmul(alone[i].data(), b[i].x, *b[i].w, b[i].T, pool);
      }
      k->matmul_batch(jobs.data(), static_cast<int64_t>(jobs.size()), pool);
      for (size_t i = 0; i < b.size(); ++i)
        ASSERT_EQ(0, std::memcmp(y[i].data(), alone[i].data(), y[i].size() * sizeof(float)))
            << k->name << " batch " << bi << " job " << i;
    }
}

TEST(Qmatmul, EmbeddingAndMatmulXwDequantize) {
  // The ops that read a quantized weight as floats (embedding rows, matmul_xw: MLA's absorbed
  // query) see exactly the dequantized values; matmul_xw on 96 columns (a 64-column task and a
  // 32-column one, whose last two vectors are empty) and 5 rows of x (a 4-row tile and one).
  ThreadPool pool(1);
  const int64_t R = 10, C = 96, T = 5;
  for (BlockFormat f : kFormats) {
    QWeight w = make_qweight(f, R, C, 400);
    const int32_t ids[2] = {7, 2};
    std::vector<float> e(2 * C);
    for (const Kernels* k : {test::table("ref"), test::table("cpu")}) {
      if (k == nullptr) continue;
      k->embedding(e.data(), ids, 2, w.ref);
      for (int j = 0; j < C; ++j) {
        ASSERT_EQ(e[j], w.value[7 * C + j]);
        ASSERT_EQ(e[C + j], w.value[2 * C + j]);
      }
      const auto x = test::randn(T * R, 3);
      std::vector<float> y(T * C);
      k->matmul_xw(y.data(), C, x.data(), R, w.ref, T, pool);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < C; ++j) {
          double s = 0, mag = 0;
          for (int64_t r = 0; r < R; ++r) {
            s += double(x[t * R + r]) * w.value[r * C + j];
            mag += std::fabs(double(x[t * R + r]) * w.value[r * C + j]);
          }
          ASSERT_LE(std::fabs(y[t * C + j] - s), gamma(R) * mag + 1e-30)
              << block_format_traits(f).name << " t " << t << " j " << j;
        }
    }
  }
}

}  // namespace
}  // namespace dsv3
