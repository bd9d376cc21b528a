// Deterministic RNG with a state that can be saved and restored exactly (checkpoints resume
// bitwise). xoshiro256** seeded through splitmix64; normal samples by Box-Muller in double
// precision.
#pragma once
#include <array>
#include <cstdint>

namespace dsv3 {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  double uniform();  // [0, 1), 53 bits
  double normal(double mean = 0, double stddev = 1);
  uint64_t below(uint64_t n);  // uniform in [0, n), unbiased

  using State = std::array<uint64_t, 6>;  // 4 generator words, spare-normal flag, its bits
  State state() const;
  void set_state(const State& s);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace dsv3
