// The weight gradient dw += dyᵀ·x (matmul_dw) of every table this CPU runs against float64 sums
// written here: odd shapes around the 16-lane vectors, the 4-row and 64-column register tiles, the
// 32-row tasks and the 128-row blocks of T of the AVX-512 kernel, T = 0, 1 and larger, on both
// sides of the single-thread cutoff, always adding to a dw that already holds values.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::gamma;
using test::kU;

struct DwCase {
  int64_t T, rows, cols;
};
const DwCase kCases[] = {{1, 1, 1}, {5, 7, 17},   {3, 37, 100},  {130, 9, 130},
                         {0, 3, 5}, {64, 33, 16}, {300, 70, 65}, {257, 40, 200}};

class MatmulDw : public ::testing::TestWithParam<std::string> {};

TEST_P(MatmulDw, AddsDyTransposedTimesXLikeDouble) {
  const Kernels* k = test::table(GetParam());
  if (k == nullptr) GTEST_SKIP() << "no AVX-512 F/BW/VL on this CPU";
  ThreadPool pool(2);
  for (const DwCase& c : kCases) {
    const std::string where = "T " + std::to_string(c.T) + " rows " + std::to_string(c.rows) +
                              " cols " + std::to_string(c.cols);
    const auto dy = test::randn(c.T * c.rows, 1 + c.rows),
               x = test::randn(c.T * c.cols, 2 + c.cols);
    const auto dw0 = test::randn(c.rows * c.cols, 3 + c.T);
    std::vector<float> dw = dw0;
    k->matmul_dw(dw.data(), dy.data(), x.data(), c.T, c.rows, c.cols, pool);
    for (int64_t o = 0; o < c.rows; ++o)
      for (int64_t i = 0; i < c.cols; ++i) {
        double exact = dw0[o * c.cols + i], abs_sum = std::fabs(exact);
        for (int64_t t = 0; t < c.T; ++t) {
          const double p = double(dy[t * c.rows + o]) * x[t * c.cols + i];
          exact += p;
          abs_sum += std::fabs(p);
        }
        // A float32 sum of T + 1 terms (the old dw and T products) in any order, FMA or not:
        // gamma(T + 1) * sum |terms|, then stored as float32 (u |dw|).
        ASSERT_NEAR(dw[o * c.cols + i], exact, gamma(c.T + 1) * abs_sum + kU * std::fabs(exact))
            << where << " o " << o << " i " << i;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, MatmulDw, ::testing::Values("ref", "cpu"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dsv3
