// Independent references for the float-format tests: values from the bit-field formula in double,
// and encoding by searching the table of representable values (nearest, ties to the even code).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace dsv3::test {

// Value of a binary float code with `exp_bits`/`mant_bits` and `bias`, ignoring inf/NaN encodings
// (callers handle those): (-1)^s * (e == 0 ? m/2^M * 2^(1-bias) : (1 + m/2^M) * 2^(e-bias)).
inline double bitfield_value(uint32_t code, int exp_bits, int mant_bits, int bias) {
  const uint32_t mant = code & ((1u << mant_bits) - 1);
  const uint32_t exp = (code >> mant_bits) & ((1u << exp_bits) - 1);
  const bool neg = (code >> (exp_bits + mant_bits)) & 1;
  const double frac = static_cast<double>(mant) / static_cast<double>(1u << mant_bits);
  const double v = exp == 0 ? frac * std::ldexp(1.0, 1 - bias)
                            : (1.0 + frac) * std::ldexp(1.0, static_cast<int>(exp) - bias);
  return neg ? -v : v;
}

// pos[c] is the value of the non-negative code c, increasing with c. Returns the code nearest to
// |x| (x finite), ties to the even code; the sign bit is the caller's business.
inline uint32_t nearest_code(double x, const std::vector<double>& pos) {
  const double a = std::fabs(x);
  // largest c with pos[c] <= a (binary search; pos[0] == 0 <= a)
  size_t lo = 0, hi = pos.size() - 1;
  if (a >= pos[hi]) return static_cast<uint32_t>(hi);
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    (pos[mid] <= a ? lo : hi) = mid;
  }
  const double dlo = a - pos[lo], dhi = pos[hi] - a;
  if (dlo < dhi) return static_cast<uint32_t>(lo);
  if (dhi < dlo) return static_cast<uint32_t>(hi);
  return static_cast<uint32_t>((lo % 2 == 0) ? lo : hi);
}

}  // namespace dsv3::test
