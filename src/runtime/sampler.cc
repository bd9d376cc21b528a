#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace dsv3 {
namespace {

void check_finite(double v, const char* field) {
  DSV3_CHECK(std::isfinite(v), std::string("sampling: ") + field + " is not a finite number");
}

// Top-p sorts only as far as it must: the 1024 most likely tokens first (enough for a trained
// model's peaked distributions), then eight times more each time the mass falls short.
constexpr size_t kTopPHead = 1024, kTopPGrowth = 8;

// Makes [begin + from, begin + to) the next tokens in `before` order, sorted, given that
// [begin, begin + from) already holds the first `from` in order.
template <typename It, typename Less>
void sort_next(It begin, It end, size_t from, size_t to, Less before) {
  if (begin + to < end) std::nth_element(begin + from, begin + to, end, before);
  std::sort(begin + from, begin + to, before);
}

}  // namespace

int32_t draw_token(std::span<const double> probs, double total, Rng& rng) {
  int32_t first = -1;
  bool several = false;
  for (size_t i = 0; i < probs.size() && !several; ++i) {
    if (probs[i] <= 0) continue;
    several = first >= 0;
    if (first < 0) first = static_cast<int32_t>(i);
  }
  DSV3_CHECK(first >= 0 && total > 0, "sampler: drawing from an empty distribution");
  if (!several) return first;
  double u = rng.uniform() * total, acc = 0;
  int32_t last = first;
  for (size_t i = first; i < probs.size(); ++i) {
    if (probs[i] <= 0) continue;
    acc += probs[i];
    last = static_cast<int32_t>(i);
    if (acc > u) return last;
  }
  return last;  // u within rounding of the total
}

void SamplingParams::validate() const {
  check_finite(temperature, "temperature");
  check_finite(top_p, "top_p");
  check_finite(min_p, "min_p");
  check_finite(repetition_penalty, "repetition_penalty");
  check_finite(frequency_penalty, "frequency_penalty");
  check_finite(presence_penalty, "presence_penalty");
  DSV3_CHECK(temperature >= 0, "sampling: temperature " + std::to_string(temperature) + " < 0",
             "use 0 for greedy decoding");
  DSV3_CHECK(top_k >= 0, "sampling: top_k " + std::to_string(top_k) + " < 0", "use 0 to disable");
  DSV3_CHECK(top_p >= 0 && top_p <= 1,
             "sampling: top_p " + std::to_string(top_p) + " is outside [0, 1]");
  DSV3_CHECK(min_p >= 0 && min_p <= 1,
             "sampling: min_p " + std::to_string(min_p) + " is outside [0, 1]");
  DSV3_CHECK(repetition_penalty > 0,
             "sampling: repetition_penalty " + std::to_string(repetition_penalty) + " <= 0",
             "1 disables it; values above 1 discourage repeats");
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  p_.validate();
}

void Sampler::add_context(std::span<const int32_t> ids) {
  for (int32_t id : ids) ++context_count_[id];
}

void Sampler::accept(int32_t id) {
  ++context_count_[id];
  ++generated_count_[id];
}

void Sampler::reset() {
  context_count_.clear();
  generated_count_.clear();
  rng_.reseed(p_.seed);
}

double Sampler::filter(std::span<const float> logits, std::vector<Candidate>& cands) const {
  const size_t vocab = logits.size();
  DSV3_CHECK(vocab > 0, "sampler: empty logits row");
  cands.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) {
    double z = logits[i];
    DSV3_CHECK(!std::isnan(z) && z != INFINITY,
               "sampler: the logit of token " + std::to_string(i) + " is " + std::to_string(z),
               "the forward pass produced a non-finite value");
    cands[i] = {z, static_cast<int32_t>(i)};
  }
  // Steps 1 and 2: penalties, on the rows of the tokens seen (ids past this vocabulary are the
  // tokenizer's padding and have no logit).
  if (p_.repetition_penalty != 1.0) {
    for (const auto& [id, n] : context_count_) {
      if (id < 0 || static_cast<size_t>(id) >= vocab) continue;
      double& z = cands[id].z;
      z = z > 0 ? z / p_.repetition_penalty : z * p_.repetition_penalty;
    }
  }
  if (p_.frequency_penalty != 0.0 || p_.presence_penalty != 0.0) {
    for (const auto& [id, n] : generated_count_) {
      if (id < 0 || static_cast<size_t>(id) >= vocab) continue;
      cands[id].z -= n * p_.frequency_penalty + (n > 0 ? p_.presence_penalty : 0.0);
    }
  }
  auto before = [](const Candidate& a, const Candidate& b) {
    return a.z > b.z || (a.z == b.z && a.id < b.id);
  };
  // Masked tokens (-inf) never survive.
  cands.erase(std::remove_if(cands.begin(), cands.end(),
                             [](const Candidate& c) { return c.z == -INFINITY; }),
              cands.end());
  DSV3_CHECK(!cands.empty(), "sampler: every token is masked (all logits are -inf)");

  // Step 3: greedy.
  if (p_.greedy()) {
    Candidate best = *std::min_element(cands.begin(), cands.end(), before);
    cands.assign(1, best);
    return 1.0;
  }
  for (auto& c : cands) c.z /= p_.temperature;

  // Step 4: top-k, keeping ties with the k-th logit (HF compares against topk()[..., -1]).
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < cands.size()) {
    auto kth = cands.begin() + (p_.top_k - 1);
    std::nth_element(cands.begin(), kth, cands.end(), before);
    double threshold = kth->z;
    auto end = std::partition(kth + 1, cands.end(),
                              [threshold](const Candidate& c) { return c.z >= threshold; });
    cands.erase(end, cands.end());
  }

  double zmax = std::min_element(cands.begin(), cands.end(), before)->z;  // first in `before` order
  double total = 0;
  for (const auto& c : cands) total += std::exp(c.z - zmax);

  // Step 5: top-p over the descending order; the mass before a token must be < top_p.
  if (p_.top_p < 1.0) {
    size_t sorted = std::min(cands.size(), kTopPHead);
    sort_next(cands.begin(), cands.end(), 0, sorted, before);
    double mass = 0, limit = p_.top_p * total;
    size_t keep = cands.size();
    for (size_t j = 0; j < cands.size(); ++j) {
      if (j == sorted) {  // the sorted head did not reach top_p: sort further
        size_t next = std::min(cands.size(), sorted * kTopPGrowth);
        sort_next(cands.begin(), cands.end(), sorted, next, before);
        sorted = next;
      }
      if (j > 0 && mass >= limit) {
        keep = j;
        break;
      }
      mass += std::exp(cands[j].z - zmax);
    }
    cands.resize(keep);
    total = mass;
  }

  // Step 6: min-p relative to the most likely token: p_i / p_max = exp(z_i - z_max).
  if (p_.min_p > 0.0) {
    total = 0;
    auto end = std::remove_if(cands.begin(), cands.end(),
                              [&](const Candidate& c) { return std::exp(c.z - zmax) < p_.min_p; });
    cands.erase(end, cands.end());
    for (const auto& c : cands) total += std::exp(c.z - zmax);
  }
  for (auto& c : cands) c.z -= zmax;  // the callers need exp(z) / total
  return total;
}

int32_t Sampler::sample(std::span<const float> logits) {
  double total = filter(logits, cands_);
  if (cands_.size() == 1) return cands_[0].id;
  // Step 7: inverse CDF over the survivors, in their (deterministic) order.
  double u = rng_.uniform() * total, acc = 0;
  for (const auto& c : cands_) {
    acc += std::exp(c.z);
    if (acc > u) return c.id;
  }
  return cands_.back().id;  // u within rounding of the total
}

std::vector<double> Sampler::distribution(std::span<const float> logits) const {
  std::vector<Candidate> cands;
  double total = filter(logits, cands);
  std::vector<double> probs(logits.size(), 0.0);
  for (const auto& c : cands) probs[c.id] = cands.size() == 1 ? 1.0 : std::exp(c.z) / total;
  return probs;
}

}  // namespace dsv3
