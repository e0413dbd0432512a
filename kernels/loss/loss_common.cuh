// Device pieces shared by the forward and backward loss kernels: the pair predicates (positives,
// normaliser, exclude_self), the online log-sum-exp merge, operand tile loaders and a fixed-order
// block reduction.  Everything here is deterministic: no atomics, fixed summation orders.
#pragma once

#include <cstdint>

#include "kernels/common/numeric.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

constexpr uint8_t kInZ = 1; // j is in the normaliser Z(i)
constexpr uint8_t kPos = 2; // j is in the positives P(i)

// Flags of the pair (i, j): exclude_self removes j == i from both sets, NEGATIVES removes P(i)
// from Z(i).  A TARGETS target outside [0, m) matches no column (the row itself is handled by
// the caller: < 0 invalid, >= m NaN).
__device__ inline uint8_t pair_flags(const ProblemParams& p, int64_t i, int64_t j) {
  if (p.exclude_self && i == j)
    return 0;
  bool pos = false;
  switch (p.positives) {
  case Positives::diagonal:
    pos = (i == j);
    break;
  case Positives::targets:
    pos = (p.targets[i] == j);
    break;
  case Positives::labels:
    pos = (p.labels_a[i] == p.labels_b[j]);
    break;
  case Positives::view_pairs:
    pos = (j == (i + p.n / 2) % p.n);
    break;
  }
  if (pos)
    return p.negatives_only ? kPos : uint8_t(kPos | kInZ);
  return kInZ;
}

// The scans behind the counts: LABELS rows count the labels_b equal to labels_a[i], LABELS
// columns the labels_a equal to labels_b[j], TARGETS columns the targets equal to j.  `matches` is
// that count over the whole other side (self pair included); the other modes need none (0).
//   values: the array scanned (nullptr: no scan), key: what the element is compared with.
struct CountScan {
  const int64_t* values;
  int64_t length;
  int64_t key;
};
__device__ inline CountScan row_count_scan(const ProblemParams& p, int64_t i) {
  if (p.positives == Positives::labels)
    return CountScan{p.labels_b, p.m, p.labels_a[i]};
  return CountScan{nullptr, 0, 0};
}
__device__ inline CountScan col_count_scan(const ProblemParams& p, int64_t j) {
  if (p.positives == Positives::labels)
    return CountScan{p.labels_a, p.n, p.labels_b[j]};
  if (p.positives == Positives::targets)
    return CountScan{p.targets, p.n, j};
  return CountScan{nullptr, 0, 0};
}

// Row i's positives count |P(i)| and normaliser size |Z(i)|, given its scan's `matches`.
__device__ inline void row_counts(const ProblemParams& p, int64_t i, int64_t matches, int32_t* npos,
                                  int32_t* nz) {
  int64_t c = 0;
  switch (p.positives) {
  case Positives::diagonal:
    c = (i < p.m && !p.exclude_self) ? 1 : 0;
    break;
  case Positives::targets: {
    const int64_t t = p.targets[i];
    c = (t >= 0 && t < p.m && !(p.exclude_self && t == i)) ? 1 : 0;
    break;
  }
  case Positives::labels: // minus the self pair (i, i) when it matched and is excluded
    c = matches - ((p.exclude_self && i < p.m && p.labels_a[i] == p.labels_b[i]) ? 1 : 0);
    break;
  case Positives::view_pairs: {
    const int64_t j = (i + p.n / 2) % p.n;
    c = (j < p.m && !(p.exclude_self && j == i)) ? 1 : 0;
    break;
  }
  }
  const int64_t self = (p.exclude_self && i < p.m) ? 1 : 0;
  *npos = int32_t(c);
  *nz = int32_t(p.m - self - (p.negatives_only ? c : 0));
}

// Column j's positives {i : j in P(i)} and normaliser size, given its scan's `matches`.
__device__ inline void col_counts(const ProblemParams& p, int64_t j, int64_t matches, int32_t* npos,
                                  int32_t* nz) {
  int64_t c = 0;
  switch (p.positives) {
  case Positives::diagonal:
    c = (j < p.n && !p.exclude_self) ? 1 : 0;
    break;
  case Positives::targets: // minus row j's own target when it is j and the self pair is excluded
    c = matches - ((p.exclude_self && j < p.n && p.targets[j] == j) ? 1 : 0);
    break;
  case Positives::labels:
    c = matches - ((p.exclude_self && j < p.n && p.labels_a[j] == p.labels_b[j]) ? 1 : 0);
    break;
  case Positives::view_pairs: { // the one i with (i + n/2) mod n == j
    const int64_t i = (j + p.n - p.n / 2) % p.n;
    c = (j < p.n && (i + p.n / 2) % p.n == j && !(p.exclude_self && i == j)) ? 1 : 0;
    break;
  }
  }
  const int64_t self = (p.exclude_self && j < p.n) ? 1 : 0;
  *npos = int32_t(c);
  *nz = int32_t(p.n - self - (p.negatives_only ? c : 0));
}

__device__ inline Stats empty_stats() {
  return Stats{neg_inf(), 0.0f, 0.0f, 0, 0};
}

// Merges (max2, sum2) into (max, sum).  Hazard: two empty sets have max = -inf, and
// exp(-inf - (-inf)) would be NaN; an empty side contributes nothing instead.
__device__ inline void merge_lse(float& max, float& sum, float max2, float sum2) {
  if (sum2 == 0.0f && max2 == neg_inf())
    return;
  if (sum == 0.0f && max == neg_inf()) {
    max = max2;
    sum = sum2;
    return;
  }
  const float nm = max > max2 ? max : max2;
  sum = sum * expf(max - nm) + sum2 * expf(max2 - nm);
  max = nm;
}

__device__ inline void merge_stats(Stats& s, const Stats& t) {
  merge_lse(s.max, s.sum, t.max, t.sum);
  s.pos += t.pos;
  s.npos += t.npos;
  s.nz += t.nz;
}

// Per-row (or per-column) loss from complete statistics.  Sets *valid to whether it counts in
// MEAN.  bad_target: a TARGETS target >= m (the loss is NaN and counted).
__device__ inline float loss_from_stats(const Stats& s, bool negatives_only, bool bad_target,
                                        bool bad_scale, float* lse, int32_t* valid) {
  // Hazard: an empty normaliser has LSE -inf (never -inf - -inf; nothing is subtracted from it).
  *lse = s.nz > 0 ? s.max + logf(s.sum) : neg_inf();
  float loss = 0.0f;
  *valid = (s.npos > 0 && s.nz > 0) ? 1 : 0;
  if (*valid) {
    loss = *lse - s.pos / float(s.npos);
    if (negatives_only)
      loss -= logf(float(s.nz));
  }
  if (bad_target) {
    loss = quiet_nan();
    *valid = 1;
  }
  if (bad_scale) {
    loss = quiet_nan();
    *lse = quiet_nan();
    *valid = 1;
  }
  return loss;
}

// Fixed-order sum over a block: every thread passes its value; thread 0 gets the total.  The
// tree is the same on every run (deterministic).  `buf` holds THREADS floats of shared memory.
// `sync`: the barrier of the THREADS participants (default: the whole block).
struct BlockSync {
  __device__ void operator()() const { __syncthreads(); }
};
template <int THREADS, typename V, typename Sync = BlockSync>
__device__ inline V block_sum(V v, V* buf, int tid, Sync sync = Sync{}) {
  buf[tid] = v;
  sync();
#pragma unroll
  for (int stride = THREADS / 2; stride > 0; stride /= 2) {
    if (tid < stride)
      buf[tid] = buf[tid] + buf[tid + stride];
    sync();
  }
  const V total = buf[0];
  sync();
  return total;
}

} // namespace kernels
} // namespace flashnce
