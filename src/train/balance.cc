// The balance rule, MaxVio and the f·P balance losses of SPEC §2, in double.
#include "train/balance.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace dsv3 {
namespace {

double mean_load(const int64_t* load, int64_t E) {
  DSV3_CHECK(E > 0, "balance: " + std::to_string(E) + " experts");
  double sum = 0;
  for (int64_t i = 0; i < E; ++i) sum += static_cast<double>(load[i]);
  return sum / static_cast<double>(E);
}

// One f·P loss over rows [begin, begin + T), its gradient times `scale` added to ds.
double fp_loss(const float* s, const int32_t* experts, int64_t begin, int64_t T, int64_t E,
               int64_t K, double alpha, double scale, float* ds, std::vector<double>& f,
               std::vector<double>& P) {
  std::fill(f.begin(), f.end(), 0.0);
  std::fill(P.begin(), P.end(), 0.0);
  std::vector<double> row_sum(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const float* st = s + (begin + t) * E;
    double r = 0;
    for (int64_t i = 0; i < E; ++i) r += st[i];
    DSV3_CHECK(r > 0, "balance loss: the scores of row " + std::to_string(begin + t) + " sum to " +
                          std::to_string(r) + " (sigmoid or softmax scores expected)");
    row_sum[t] = r;
    for (int64_t i = 0; i < E; ++i) P[i] += st[i] / r;
    for (int64_t k = 0; k < K; ++k) f[experts[(begin + t) * K + k]] += 1;
  }
  const double Td = static_cast<double>(T);
  double loss = 0;
  for (int64_t i = 0; i < E; ++i) {
    P[i] /= Td;
    f[i] *= static_cast<double>(E) / (static_cast<double>(K) * Td);
    loss += f[i] * P[i];
  }
  // dL/ds_{k,t} = α/(T·r_t) · (f_k - Σ_i f_i s'_{i,t}): s' = s / r_t couples a row's scores.
  for (int64_t t = 0; t < T; ++t) {
    const float* st = s + (begin + t) * E;
    const double r = row_sum[t];
    double fs = 0;
    for (int64_t i = 0; i < E; ++i) fs += f[i] * st[i] / r;
    const double c = scale * alpha / (Td * r);
    float* dt = ds + (begin + t) * E;
    for (int64_t k = 0; k < E; ++k) dt[k] = static_cast<float>(dt[k] + c * (f[k] - fs));
  }
  return alpha * loss;
}

}  // namespace

void update_balance_bias(float* bias, const int64_t* load, int64_t E, double gamma) {
  const double mean = mean_load(load, E);
  const float step = static_cast<float>(gamma);
  for (int64_t i = 0; i < E; ++i) {
    const double l = static_cast<double>(load[i]);
    if (l < mean)
      bias[i] += step;  // underloaded: more likely to be picked next time
    else if (l > mean)
      bias[i] -= step;
  }
}

double max_violation(const int64_t* load, int64_t E) {
  const double mean = mean_load(load, E);
  if (mean == 0) return 0;
  const int64_t mx = *std::max_element(load, load + E);
  return static_cast<double>(mx) / mean - 1;
}

double balance_loss(const MoeActs& a, const Batch& b, int64_t E, int64_t K, double alpha,
                    BalanceScope scope, std::vector<float>& dscores) {
  return balance_loss(a, b.seqs(), b.rows(), E, K, alpha, scope, dscores);
}

double balance_loss(const MoeActs& a, std::span<const BatchSeq> seqs, int64_t rows, int64_t E,
                    int64_t K, double alpha, BalanceScope scope, std::vector<float>& dscores) {
  DSV3_CHECK(E > 0 && K > 0 && K <= E, "balance loss: K = " + std::to_string(K) +
                                           " of E = " + std::to_string(E) + " experts");
  DSV3_CHECK(static_cast<int64_t>(a.scores.size()) == rows * E &&
                 static_cast<int64_t>(a.experts.size()) == rows * K,
             "balance loss: the MoE activations hold " + std::to_string(a.scores.size()) +
                 " scores and " + std::to_string(a.experts.size()) + " choices, expected " +
                 std::to_string(rows) + " rows of " + std::to_string(E) + " and " +
                 std::to_string(K));
  for (int32_t e : a.experts)
    DSV3_CHECK(e >= 0 && e < E, "balance loss: selected expert " + std::to_string(e) +
                                    " is outside 0.." + std::to_string(E - 1));
  if (dscores.empty()) dscores.assign(static_cast<size_t>(rows * E), 0.0f);
  DSV3_CHECK(static_cast<int64_t>(dscores.size()) == rows * E,
             "balance loss: dscores holds " + std::to_string(dscores.size()) +
                 " values, expected " + std::to_string(rows * E));
  std::vector<double> f(static_cast<size_t>(E)), P(static_cast<size_t>(E));
  if (scope == BalanceScope::Batch) {
    if (rows == 0) return 0;
    return fp_loss(a.scores.data(), a.experts.data(), 0, rows, E, K, alpha, 1.0, dscores.data(), f,
                   P);
  }
  int64_t n = 0;
  for (const BatchSeq& s : seqs) {
    DSV3_CHECK(s.begin >= 0 && s.count >= 0 && s.begin <= rows - s.count,
               "balance loss: a sequence's rows " + std::to_string(s.begin) + " + " +
                   std::to_string(s.count) + " lie outside the " + std::to_string(rows) + " rows");
    n += s.count > 0;
  }
  if (n == 0) return 0;
  const double scale = 1.0 / static_cast<double>(n);  // the mean over sequences
  double total = 0;
  for (const BatchSeq& s : seqs)
    if (s.count > 0)
      total += fp_loss(a.scores.data(), a.experts.data(), s.begin, s.count, E, K, alpha, scale,
                       dscores.data(), f, P);
  return total * scale;
}

}  // namespace dsv3
