// Finite-difference mode for any op: checks an analytic gradient against central differences of
// a scalar loss computed by the op's float32 forward, the differences taken in double.
//
//   std::vector<float> x = ...;           // one input of the op
//   auto loss = [&] { ...forward reading x, returns double Σ w ⊙ y... };
//   EXPECT_TRUE(check_gradient(loss, x, analytic_dx, {}, "dx"));
//
// For each checked element, fd = (L(x_i + h) - L(x_i - h)) / (2h) with h = step * max(1, |x_i|)
// (the steps actually taken after rounding x_i ± h to float32). Its error is the truncation
// h² |L'''| / 6 (~2e-5 of the gradient's scale for h = 1e-2 and smooth ops of unit-scale inputs)
// plus the float32 forward's rounding noise divided by h: only the outputs x_i reaches change
// between the two evaluations, each by a few u, so the noise is ~sqrt(outputs) u |w y| / h,
// around 1e-5 to 1e-4 of the gradient's scale here. The default tolerance, 2e-3 (|g_i| + rms g),
// is 10x above both, yet far below a wrong gradient (a missing term, a wrong sign or factor).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace dsv3::test {

struct FdOptions {
  double step = 1e-2;       // h relative to max(1, |x_i|)
  double tol = 2e-3;        // of |g_i| + rms(g)
  int64_t max_checks = 96;  // elements checked per input, spread evenly over it
};

template <typename Loss>
::testing::AssertionResult check_gradient(const Loss& loss, std::vector<float>& x,
                                          const std::vector<float>& grad, const FdOptions& o = {},
                                          const char* what = "gradient") {
  if (grad.size() != x.size())
    return ::testing::AssertionFailure()
           << what << ": " << grad.size() << " gradients for " << x.size() << " inputs";
  double ss = 0;
  for (float g : grad) ss += double(g) * g;
  const double rms = std::sqrt(ss / double(std::max<size_t>(grad.size(), 1)));
  const int64_t n = int64_t(x.size()), stride = std::max<int64_t>(1, n / o.max_checks);
  double worst = 0;
  for (int64_t i = 0; i < n; i += stride) {
    const float x0 = x[i];
    const double h = o.step * std::max(1.0, std::fabs(double(x0)));
    const float up = static_cast<float>(x0 + h), down = static_cast<float>(x0 - h);
    x[i] = up;
    const double l_up = loss();
    x[i] = down;
    const double l_down = loss();
    x[i] = x0;
    const double fd = (l_up - l_down) / (double(up) - double(down));
    const double bound = o.tol * (std::fabs(double(grad[i])) + rms);
    const double err = std::fabs(fd - grad[i]);
    worst = std::max(worst, err / bound);
    if (!(err <= bound))
      return ::testing::AssertionFailure()
             << what << "[" << i << "]: analytic " << grad[i] << ", central difference " << fd
             << " (|diff| " << err << " > " << bound << " = " << o.tol << " (|g| + rms " << rms
             << "))";
  }
  return ::testing::AssertionSuccess() << what << ": worst |diff| / bound " << worst;
}

}  // namespace dsv3::test
