// Helpers shared by the unit tests: tolerance checks that report the worst element and say why the
// tolerance is what it is.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <string>

namespace dsv3::test {

struct Tol {
  double atol = 0, rtol = 0;
};

// Passes when |a - r| <= atol + rtol * |r| for every element; on failure names the worst index.
template <typename A, typename R>
::testing::AssertionResult all_close(const A* actual, const R* ref, size_t n, Tol tol,
                                     const char* why) {
  double worst = -1;
  size_t worst_i = 0;
  for (size_t i = 0; i < n; ++i) {
    double a = static_cast<double>(actual[i]), r = static_cast<double>(ref[i]);
    double excess = std::fabs(a - r) - (tol.atol + tol.rtol * std::fabs(r));
    if (std::isnan(a) != std::isnan(r)) excess = INFINITY;
    if (excess > worst) {
      worst = excess;
      worst_i = i;
    }
  }
  if (worst <= 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst_i << ": actual " << static_cast<double>(actual[worst_i]) << " ref "
         << static_cast<double>(ref[worst_i]) << " exceeds atol " << tol.atol << " rtol "
         << tol.rtol << " (" << why << ")";
}

}  // namespace dsv3::test
