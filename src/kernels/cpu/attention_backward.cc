// AVX-512 attention backward (kernels.h AttentionBackwardArgs), blocked as FlashAttention-2's
// backward: positions are cut into blocks of kB; for a group of kGroup key blocks (K, Kᵀ and Vᵀ
// packed into scratch once) and one query head, each query block that sees them (its q, dout and
// dq rows packed once) recomputes, per key block, the kB x kB scores and dP = dout·vᵀ, turns them
// into P and dS, and adds Pᵀ·dout to dv, dSᵀ·q to dk and dS·k to dq: five small GEMMs on a
// register-tiled micro-kernel. Packing matters: rows of one head sit heads x d floats apart
// (12 KB for 16 heads of 192), which cost 20-40% in cache and prefetch misses when read in place.
//
// Tasks are (key head g, chunk of consecutive key blocks). A task owns its chunk's dk/dv rows for
// head g, so those are written race-free and summed in the same order whatever the chunking (over
// key blocks, then the group's heads, then query blocks). dq gets contributions from every key
// block: chunk 0 (which covers all query rows) writes it, later chunks write partial dq buffers
// that a last pass adds in chunk order. Chunks are only cut where the key heads alone would leave
// threads idle, so dq's summation order depends on the pool size; dk and dv's do not. Threads take
// tasks from a shared counter: causal chunks differ in cost even when balanced by estimate.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "kernels/cpu/cpu.h"

#pragma GCC target("avx512f,avx512bw,avx512vl")  // after every include, see matmul.cc

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

// Positions per block: 48 is 3 vectors of keys, and divides by every micro-kernel height below
// (6, 8, 12, 24), so only the last block of a sequence has row tails.
constexpr int64_t kB = 48;

// C[i, 0 .. 16 NV) (+)= Σ_k A(i, k) B[k, 0 .. 16 NV) for MR rows, A(i, k) = a[i * ai + k * ak]
// broadcast, B rows ldb apart; the last vector of every row masked by `last`.
template <int MR, int NV>
void tile(float* c, int64_t ldc, const float* a, int64_t ai, int64_t ak, const float* b,
          int64_t ldb, int64_t K, __mmask16 last, bool acc) {
  __mmask16 m[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) m[v] = v == NV - 1 ? last : __mmask16(0xFFFF);
  __m512 r[MR][NV];
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      r[i][v] = acc ? _mm512_maskz_loadu_ps(m[v], c + i * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_maskz_loadu_ps(m[v], b + k * ldb + 16 * v);
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * ai + k * ak]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) r[i][v] = _mm512_fmadd_ps(av, bv[v], r[i][v]);
    }
  }
#pragma GCC unroll 24
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(c + i * ldc + 16 * v, m[v], r[i][v]);
}

// M rows of one strip of up to 16 NV columns: tiles of 24 / NV rows (24 accumulators, the most
// that leave registers for B and the broadcast), then 4, 2, 1 for a tail.
template <int NV>
void strip(float* c, int64_t ldc, int64_t M, const float* a, int64_t ai, int64_t ak, const float* b,
           int64_t ldb, int64_t K, __mmask16 last, bool acc) {
  constexpr int MR = 24 / NV;
  int64_t i = 0;
  for (; i + MR <= M; i += MR)
    tile<MR, NV>(c + i * ldc, ldc, a + i * ai, ai, ak, b, ldb, K, last, acc);
  for (; i + 4 <= M; i += 4)
    tile<4, NV>(c + i * ldc, ldc, a + i * ai, ai, ak, b, ldb, K, last, acc);
  for (; i + 2 <= M; i += 2)
    tile<2, NV>(c + i * ldc, ldc, a + i * ai, ai, ak, b, ldb, K, last, acc);
  for (; i < M; ++i) tile<1, NV>(c + i * ldc, ldc, a + i * ai, ai, ak, b, ldb, K, last, acc);
}

// C[M, N] (+)= A[M, K] · B[K, N] (A element (i, k) at a[i * ai + k * ak], rows of B and C ldb and
// ldc apart), in strips of 64 columns.
void gemm(float* c, int64_t ldc, int64_t M, int64_t N, const float* a, int64_t ai, int64_t ak,
          const float* b, int64_t ldb, int64_t K, bool acc) {
  for (int64_t j = 0; j < N; j += 64) {
    const int64_t w = std::min<int64_t>(64, N - j);
    const __mmask16 last = tail_mask(w - (w - 1) / 16 * 16);
    switch ((w + 15) / 16) {
      case 4:
        strip<4>(c + j, ldc, M, a, ai, ak, b + j, ldb, K, last, acc);
        break;
      case 3:
        strip<3>(c + j, ldc, M, a, ai, ak, b + j, ldb, K, last, acc);
        break;
      case 2:
        strip<2>(c + j, ldc, M, a, ai, ak, b + j, ldb, K, last, acc);
        break;
      default:
        strip<1>(c + j, ldc, M, a, ai, ak, b + j, ldb, K, last, acc);
        break;
    }
  }
}

float dot(const float* x, const float* y, int64_t n) {
  __m512 s = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + j), _mm512_maskz_loadu_ps(m, y + j), s);
  }
  return hsum(s);
}

// The work split: chunk c is key blocks [bound[c], bound[c + 1]); its dq contributions for query
// rows from row0[c] on go to dq (c = 0) or to partial + offset[c * n_kv_heads + g], rows of
// group * dk (head hl of the group at hl * dk).
struct Plan {
  int64_t group = 0, n_blocks = 0, n_chunks = 1;
  std::vector<int64_t> bound, row0, offset;
  std::unique_ptr<float[]> partial;
};

// Row stride of a packed block of d columns: whole vectors plus one, so that rows do not fall on
// the same L1 sets as they do at the callers' strides (heads x d floats, often a multiple of 4 KB).
int64_t packed(int64_t d) {
  return (d + 15) / 16 * 16 + 16;
}

// Key blocks a query block meets at once: their state (K rows, Kᵀ, Vᵀ, dk and dv sums; ~170 KB
// each at dk 192, dv 128) stays in L2 while the query blocks (q, dout, dq: ~100 KB) stream past
// from L3 once per kGroup key blocks rather than once per key block.
constexpr int64_t kGroup = 4;

// Per thread: kGroup key blocks' state, one query block (q, dout, dq), its P and dS, and D for the
// task's rows. Not zeroed: every value read is written first (the dk/dv sums are cleared per key
// block group), and small calls should not pay for clearing ~700 KB per thread.
struct Scratch {
  int64_t ldk, ldv;
  std::unique_ptr<float[]> arena;
  float *kr, *kt, *vt, *dk, *dv, *q, *dout, *dq, *p, *ds, *d;
  explicit Scratch(const AttentionArgs& a, int64_t group) : ldk(packed(a.dk)), ldv(packed(a.dv)) {
    const int64_t sizes[] = {kGroup * kB * ldk, kGroup * a.dk * kB, kGroup * a.dv * kB,
                             kGroup * kB * ldk, kGroup * kB * ldv,  kB * ldk,
                             kB * ldv,          kB * ldk,           kB * kB,
                             kB * kB,           group * a.T};
    float** parts[] = {&kr, &kt, &vt, &dk, &dv, &q, &dout, &dq, &p, &ds, &d};
    int64_t total = 0;
    for (int64_t n : sizes) total += n;
    arena.reset(new float[total]);
    float* at = arena.get();
    for (int i = 0; i < 11; ++i) *parts[i] = at, at += sizes[i];
  }
};

// rows x n floats from src (rows ld_src apart) to dst (rows ld_dst apart).
void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
               int64_t n) {
  for (int64_t r = 0; r < rows; ++r) std::copy_n(src + r * ld_src, n, dst + r * ld_dst);
}

// dst rows += src rows (rows x n floats).
void add_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
              int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 m = tail_mask(n - j);
      float* y = dst + r * ld_dst + j;
      _mm512_mask_storeu_ps(y, m,
                            _mm512_add_ps(_mm512_maskz_loadu_ps(m, y),
                                          _mm512_maskz_loadu_ps(m, src + r * ld_src + j)));
    }
}

// The query rows from position `pos` on (row t sits at position S - T + t).
int64_t first_row(const AttentionArgs& a, int64_t pos) {
  return std::max<int64_t>(0, pos - (a.S - a.T));
}

void run_task(const AttentionBackwardArgs& b, const Plan& plan, int64_t g, int64_t c, Scratch& sc) {
  const AttentionArgs& a = b.fwd;
  const int64_t group = plan.group, off = a.S - a.T, t_first = plan.row0[c];
  // This task's dq: row t, head hl of the group at dq + (t - t_first) * dq_row + hl * dq_head.
  float* dq;
  int64_t dq_row, dq_head;
  if (c == 0) {
    dq = b.dq + g * group * b.dq_head_stride, dq_row = b.dq_row_stride, dq_head = b.dq_head_stride;
  } else {
    dq = plan.partial.get() + plan.offset[c * a.n_kv_heads + g], dq_row = group * a.dk;
    dq_head = a.dk;
  }
  for (int64_t t = t_first; t < a.T; ++t)
    for (int64_t hl = 0; hl < group; ++hl)
      std::fill_n(dq + (t - t_first) * dq_row + hl * dq_head, a.dk, 0.0f);
  // D = dout·out per row and head.
  for (int64_t hl = 0; hl < group; ++hl) {
    const int64_t h = g * group + hl;
    for (int64_t t = t_first; t < a.T; ++t)
      sc.d[hl * a.T + t] = dot(b.dout + t * b.dout_row_stride + h * b.dout_head_stride,
                               a.out + t * a.out_row_stride + h * a.out_head_stride, a.dv);
  }
  const float* k = a.k + g * a.k_head_stride;
  const float* v = a.v + g * a.v_head_stride;
  const __m512 scale = _mm512_set1_ps(a.scale);
  const int64_t ldk = sc.ldk, ldv = sc.ldv;
  for (int64_t blk0 = plan.bound[c]; blk0 < plan.bound[c + 1]; blk0 += kGroup) {
    const int64_t n_blk = std::min(kGroup, plan.bound[c + 1] - blk0);
    // K, Kᵀ and Vᵀ of each block, zero past the last key (those columns are masked anyway).
    for (int64_t i = 0; i < n_blk; ++i) {
      const int64_t s0 = (blk0 + i) * kB, nk = std::min(kB, a.S - s0);
      copy_rows(&sc.kr[i * kB * ldk], ldk, k + s0 * a.k_row_stride, a.k_row_stride, nk, a.dk);
      float* kt = &sc.kt[i * a.dk * kB];
      float* vt = &sc.vt[i * a.dv * kB];
      for (int64_t s = 0; s < kB; ++s) {
        for (int64_t j = 0; j < a.dk; ++j)
          kt[j * kB + s] = s < nk ? k[(s0 + s) * a.k_row_stride + j] : 0.0f;
        for (int64_t j = 0; j < a.dv; ++j)
          vt[j * kB + s] = s < nk ? v[(s0 + s) * a.v_row_stride + j] : 0.0f;
      }
    }
    std::fill_n(sc.dk, n_blk * kB * ldk, 0.0f);
    std::fill_n(sc.dv, n_blk * kB * ldv, 0.0f);
    float *q = sc.q, *dout = sc.dout, *dqb = sc.dq, *p = sc.p, *ds = sc.ds;
    for (int64_t hl = 0; hl < group; ++hl) {
      const int64_t h = g * group + hl;
      // Query blocks: positions [p0, p1) on the block grid, from the first key block's on; each
      // meets the group's key blocks that start at or before it (causal).
      for (int64_t p0 = std::max(blk0 * kB, off); p0 < a.S; p0 = (p0 / kB + 1) * kB) {
        const int64_t p1 = std::min(a.S, (p0 / kB + 1) * kB), nr = p1 - p0, t0 = p0 - off;
        float* dq_rows = dq + (t0 - t_first) * dq_row + hl * dq_head;
        copy_rows(q, ldk, a.q + t0 * a.q_row_stride + h * a.q_head_stride, a.q_row_stride, nr,
                  a.dk);
        copy_rows(dout, ldv, b.dout + t0 * b.dout_row_stride + h * b.dout_head_stride,
                  b.dout_row_stride, nr, a.dv);
        copy_rows(dqb, ldk, dq_rows, dq_row, nr, a.dk);
        for (int64_t i = 0; i < n_blk && (blk0 + i) * kB <= p0; ++i) {
          const int64_t s0 = (blk0 + i) * kB, nk = std::min(kB, a.S - s0);
          gemm(p, kB, nr, kB, q, ldk, 1, &sc.kt[i * a.dk * kB], kB, a.dk, false);
          gemm(ds, kB, nr, kB, dout, ldv, 1, &sc.vt[i * a.dv * kB], kB, a.dv, false);
          for (int64_t r = 0; r < nr; ++r) {
            const int64_t t = t0 + r, valid = std::min(nk, p0 + r - s0 + 1);  // causal
            const __m512 lse = _mm512_set1_ps(a.lse[t * a.n_heads + h]);
            const __m512 dd = _mm512_set1_ps(sc.d[hl * a.T + t]);
            for (int64_t j = 0; j < kB; j += 16) {
              const __mmask16 m = valid > j ? tail_mask(valid - j) : 0;
              const __m512 pv = _mm512_maskz_mov_ps(
                  m, exp16(_mm512_fmsub_ps(_mm512_loadu_ps(p + r * kB + j), scale, lse)));
              _mm512_storeu_ps(p + r * kB + j, pv);
              const __m512 dp = _mm512_sub_ps(_mm512_loadu_ps(ds + r * kB + j), dd);
              _mm512_storeu_ps(ds + r * kB + j, _mm512_mul_ps(_mm512_mul_ps(pv, dp), scale));
            }
          }
          gemm(&sc.dv[i * kB * ldv], ldv, nk, a.dv, p, 1, kB, dout, ldv, nr, true);
          gemm(&sc.dk[i * kB * ldk], ldk, nk, a.dk, ds, 1, kB, q, ldk, nr, true);
          gemm(dqb, ldk, nr, a.dk, ds, kB, 1, &sc.kr[i * kB * ldk], ldk, nk, true);
        }
        copy_rows(dq_rows, dq_row, dqb, ldk, nr, a.dk);
      }
    }
    for (int64_t i = 0; i < n_blk; ++i) {
      const int64_t s0 = (blk0 + i) * kB, nk = std::min(kB, a.S - s0);
      add_rows(b.dk + s0 * b.dk_row_stride + g * b.dk_head_stride, b.dk_row_stride,
               &sc.dk[i * kB * ldk], ldk, nk, a.dk);
      add_rows(b.dv + s0 * b.dv_row_stride + g * b.dv_head_stride, b.dv_row_stride,
               &sc.dv[i * kB * ldv], ldv, nk, a.dv);
    }
  }
}

// Chunks per key head: the fewest that keep `threads` at least 90% busy on equal tasks, then
// fewer while the partial dq buffers would exceed 4 dq's worth of memory.
void make_plan(const AttentionArgs& a, int threads, Plan& plan) {
  plan.group = a.n_heads / a.n_kv_heads;
  plan.n_blocks = (a.S + kB - 1) / kB;
  int64_t n = 1;
  while (n < plan.n_blocks) {
    const int64_t tasks = a.n_kv_heads * n, rounds = (tasks + threads - 1) / threads;
    if (10 * tasks >= 9 * rounds * threads) break;
    ++n;
  }
  // Work of a key block: its keys times the query rows that see it.
  std::vector<double> work(plan.n_blocks);
  double total = 0;
  for (int64_t blk = 0; blk < plan.n_blocks; ++blk) {
    const int64_t s0 = blk * kB;
    total += work[blk] = double(std::min(kB, a.S - s0)) * double(a.T - first_row(a, s0));
  }
  for (;; --n) {
    plan.n_chunks = n;
    plan.bound.assign(1, 0);
    double sum = 0;
    for (int64_t blk = 0; blk + 1 < plan.n_blocks; ++blk) {
      sum += work[blk];
      const int64_t c = int64_t(plan.bound.size()) - 1, after = n - c - 1;
      const int64_t left = plan.n_blocks - blk - 1;  // blocks after this one
      if (after > 0 && (sum >= total * double(c + 1) / double(n) || left == after))
        plan.bound.push_back(blk + 1);
    }
    plan.bound.push_back(plan.n_blocks);
    plan.row0.resize(n);
    plan.offset.assign(n * a.n_kv_heads, 0);
    int64_t size = 0;
    for (int64_t c = 0; c < n; ++c) {
      plan.row0[c] = first_row(a, plan.bound[c] * kB);
      for (int64_t g = 0; g < a.n_kv_heads && c > 0; ++g) {
        plan.offset[c * a.n_kv_heads + g] = size;
        size += (a.T - plan.row0[c]) * plan.group * a.dk;
      }
    }
    if (n == 1 || size <= 4 * a.T * a.n_heads * a.dk) {
      if (size > 0) plan.partial.reset(new float[size]);
      return;
    }
  }
}

}  // namespace

void attention_backward(const AttentionBackwardArgs& b, ThreadPool& pool) {
  const AttentionArgs& a = b.fwd;
  if (a.T <= 0 || a.S <= 0) return;
  // Multiply-adds: about T·S/2 score pairs per head, each 3 dk + 2 dv.
  const int64_t macs = a.T * a.S / 2 * a.n_heads * (3 * a.dk + 2 * a.dv);
  const int threads = macs < (int64_t{1} << 17) ? 1 : pool.size();
  Plan plan;
  make_plan(a, threads, plan);
  const int64_t tasks = a.n_kv_heads * plan.n_chunks;
  std::atomic<int64_t> next{0};
  const auto work = [&](int64_t, int64_t) {
    Scratch sc(a, plan.group);
    for (int64_t i = next.fetch_add(1); i < tasks; i = next.fetch_add(1))
      run_task(b, plan, i % a.n_kv_heads, i / a.n_kv_heads, sc);
  };
  if (threads == 1)
    work(0, 1);
  else
    pool.parallel_for(threads, work);
  if (plan.n_chunks == 1) return;
  // dq += the later chunks' partial sums, in chunk order.
  run_tasks(pool, a.T, a.T * a.n_heads * a.dk * plan.n_chunks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t h = 0; h < a.n_heads; ++h) {
        const int64_t g = h / plan.group, hl = h % plan.group;
        float* dq = b.dq + t * b.dq_row_stride + h * b.dq_head_stride;
        for (int64_t c = 1; c < plan.n_chunks && plan.row0[c] <= t; ++c) {
          const float* src = plan.partial.get() + plan.offset[c * a.n_kv_heads + g] +
                             ((t - plan.row0[c]) * plan.group + hl) * a.dk;
          for (int64_t j = 0; j < a.dk; j += 16) {
            const __mmask16 m = tail_mask(a.dk - j);
            _mm512_mask_storeu_ps(
                dq + j, m,
                _mm512_add_ps(_mm512_maskz_loadu_ps(m, dq + j), _mm512_maskz_loadu_ps(m, src + j)));
          }
        }
      }
  });
}

}  // namespace dsv3::cpu
