// Kernels of the naive baseline: softmax statistics, cross-entropy and dlogits over a
// MATERIALISED n×m similarity matrix `sim` (row-major, leading dimension m, f32, before scaling).
//
//   s_ij  = scale · sim_ij
//   LSE_i = log Σ_{j∈Z(i)} exp(s_ij)                 (online max / sum, one block per row)
//   ℓ_i   = LSE_i − [NEGATIVES]·log|Z(i)| − (1/|P(i)|) Σ_{p∈P(i)} s_ip
//   columns (SYMMETRIC): the same over i for a fixed j — split over row chunks, then combined
//   G_ij  = w_i (exp(s_ij − LSE_i)[j∈Z(i)] − [j∈P(i)]/|P(i)|) + w_j (same with column stats)
//   dlogits_ij = scale · G_ij (input dtype), grad_scale = Σ_ij G_ij · sim_ij
//   COSINE (not benchmarked): as users write it — rows normalised first (f32 copies), f32 GEMMs,
//   f32 dlogits, then the backward of the normalisation.
//
// Everything of size n×m is read from / written to global memory: this is the baseline the fused
// kernels are measured against, not a model for them.  All reductions have a fixed order, so the
// baseline is deterministic too.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "flashnce/flashnce.h"

namespace flashnce::naive {

constexpr int kBlockThreads = 256;
constexpr int kWarps = kBlockThreads / 32;

// What the row / column / backward kernels read.  POD, passed by value.
struct LossParams {
  const float* sim; // n×m, ld = m, unscaled similarities
  int64_t n, m;
  const float* logit_scale;
  int positives; // fncePositives_t
  const int64_t* targets;
  const int64_t* labels_a;
  const int64_t* labels_b;
  int exclude_self;
  int negatives; // normalizer == NEGATIVES
  int symmetric;
  int reduction; // fnceReduction_t
};

// Per-row (or per-column) statistics saved by the forward pass.
struct LineStats {
  float* lse;    // LSE over Z, -inf when Z is empty
  float* loss;   // ℓ, 0 for an invalid line, NaN for a TARGETS row whose target >= m
  int64_t* npos; // |P|, -1 marks a TARGETS row with target >= m
  int64_t* nz;   // |Z|
};

__device__ __forceinline__ bool is_positive(const LossParams& p, int64_t i, int64_t j,
                                            int64_t target_i) {
  if (p.exclude_self && i == j)
    return false;
  switch (p.positives) {
  case FNCE_POSITIVES_DIAGONAL:
    return i == j;
  case FNCE_POSITIVES_TARGETS:
    return j == target_i;
  case FNCE_POSITIVES_LABELS:
    return p.labels_a[i] == p.labels_b[j];
  default:
    return j == (i + p.n / 2) % p.n; // VIEW_PAIRS (self mode, even n)
  }
}

__device__ __forceinline__ bool in_normalizer(const LossParams& p, int64_t i, int64_t j,
                                              bool positive) {
  if (p.exclude_self && i == j)
    return false;
  return !(p.negatives && positive);
}

__device__ __forceinline__ int64_t target_of(const LossParams& p, int64_t i) {
  return p.positives == FNCE_POSITIVES_TARGETS ? p.targets[i] : -1;
}

// Online log-sum-exp state: Σ exp(x − max).  Guards: −inf terms contribute nothing (and never
// form −inf − (−inf) = NaN); a NaN term poisons the sum, as it should.
struct OnlineLse {
  float max = -INFINITY;
  float sum = 0.f;
  __device__ __forceinline__ void add(float x) {
    if (x == -INFINITY)
      return;
    if (x > max) {
      sum = sum * expf(max - x) + 1.f; // max − x <= 0: no overflow; max = −inf gives 0·… = 0
      max = x;
    } else {
      sum += expf(x - max);
    }
  }
  __device__ __forceinline__ void merge(float omax, float osum) {
    if (omax == -INFINITY && osum == 0.f)
      return;                             // the other state is empty
    if (max == -INFINITY && sum == 0.f) { // this state is empty
      max = omax;
      sum = osum;
      return;
    }
    // max is never NaN (add() compares), only sum can be; a NaN sum survives the rescale.
    const float mx = fmaxf(max, omax);
    if (mx == -INFINITY) {
      sum += osum;
      return;
    }
    sum = sum * expf(max - mx) + osum * expf(omax - mx);
    max = mx;
  }
  __device__ __forceinline__ float value() const {
    return max == -INFINITY ? (sum != sum ? NAN : -INFINITY) : max + logf(sum);
  }
};

// Fixed-order block reduction of one row's partial statistics (all threads get the result).
struct RowPartial {
  OnlineLse lse;
  float pos_sum = 0.f;
  int64_t npos = 0, nz = 0;
};

__device__ inline RowPartial block_reduce(RowPartial v) {
  __shared__ float s_max[kWarps], s_sum[kWarps], s_pos[kWarps];
  __shared__ long long s_np[kWarps], s_nz[kWarps];
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float omax = __shfl_down_sync(0xffffffffu, v.lse.max, offset);
    const float osum = __shfl_down_sync(0xffffffffu, v.lse.sum, offset);
    v.lse.merge(omax, osum);
    v.pos_sum += __shfl_down_sync(0xffffffffu, v.pos_sum, offset);
    v.npos += __shfl_down_sync(0xffffffffu, (long long)v.npos, offset);
    v.nz += __shfl_down_sync(0xffffffffu, (long long)v.nz, offset);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    s_max[warp] = v.lse.max;
    s_sum[warp] = v.lse.sum;
    s_pos[warp] = v.pos_sum;
    s_np[warp] = v.npos;
    s_nz[warp] = v.nz;
  }
  __syncthreads();
  RowPartial r;
  for (int w = 0; w < kWarps; ++w) { // every thread, same order: identical results
    r.lse.merge(s_max[w], s_sum[w]);
    r.pos_sum += s_pos[w];
    r.npos += s_np[w];
    r.nz += s_nz[w];
  }
  __syncthreads(); // the shared arrays may be reused by a later call
  return r;
}

__device__ inline double block_sum(double v) {
  __shared__ double s_part[kWarps];
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0)
    s_part[warp] = v;
  __syncthreads();
  double r = 0.0;
  for (int w = 0; w < kWarps; ++w)
    r += s_part[w];
  __syncthreads();
  return r;
}

// ℓ of one line from its reduced statistics; also decides validity.
__device__ inline void finish_line(const LossParams& p, const RowPartial& r, bool bad_target,
                                   float scale, int64_t idx, LineStats out, float* lse_out) {
  const float lse = r.nz > 0 ? r.lse.value() : -INFINITY;
  float loss = 0.f;
  int64_t npos = r.npos;
  if (bad_target) {
    loss = NAN; // a target >= m: the row's loss is NaN and it is counted (contract)
    npos = -1;
  } else if (r.npos > 0 && r.nz > 0) {
    loss = lse - (p.negatives ? logf((float)r.nz) : 0.f) - r.pos_sum / (float)r.npos;
  }
  if (!isfinite(scale))
    loss = NAN; // a non-finite logit scale makes the outputs NaN
  out.lse[idx] = lse;
  out.loss[idx] = loss;
  out.npos[idx] = npos;
  out.nz[idx] = r.nz;
  if (lse_out)
    lse_out[idx] = lse;
}

// One block per row i: statistics over j ∈ [0, m).
__global__ void __launch_bounds__(kBlockThreads)
    row_stats_kernel(const LossParams p, LineStats rows, float* row_lse_out) {
  const int64_t i = blockIdx.x;
  const float scale = *p.logit_scale;
  const int64_t t = target_of(p, i);
  const float* sim_row = p.sim + i * p.m;
  RowPartial v;
  for (int64_t j = threadIdx.x; j < p.m; j += kBlockThreads) {
    const float s = scale * sim_row[j];
    const bool pos = is_positive(p, i, j, t);
    if (in_normalizer(p, i, j, pos)) {
      v.lse.add(s);
      ++v.nz;
    }
    if (pos) {
      v.pos_sum += s;
      ++v.npos;
    }
  }
  const RowPartial r = block_reduce(v);
  if (threadIdx.x == 0) {
    const bool bad = p.positives == FNCE_POSITIVES_TARGETS && t >= p.m;
    finish_line(p, r, bad, scale, i, rows, row_lse_out);
  }
}

// Column statistics, first pass: thread = column j, blockIdx.y = a chunk of rows.  Consecutive
// threads read consecutive columns of one row: coalesced.  Partials: chunk-major, [chunk][m].
struct ColumnPartials {
  float* max;
  float* sum;
  float* pos_sum;
  int64_t* npos;
  int64_t* nz;
};

__global__ void __launch_bounds__(kBlockThreads)
    col_partial_kernel(const LossParams p, ColumnPartials part, int64_t rows_per_chunk) {
  const int64_t j = (int64_t)blockIdx.x * kBlockThreads + threadIdx.x;
  if (j >= p.m)
    return;
  const float scale = *p.logit_scale;
  const int64_t i0 = (int64_t)blockIdx.y * rows_per_chunk;
  const int64_t i1 = i0 + rows_per_chunk < p.n ? i0 + rows_per_chunk : p.n;
  RowPartial v;
  for (int64_t i = i0; i < i1; ++i) {
    const float s = scale * p.sim[i * p.m + j];
    const bool pos = is_positive(p, i, j, target_of(p, i));
    if (in_normalizer(p, i, j, pos)) {
      v.lse.add(s);
      ++v.nz;
    }
    if (pos) {
      v.pos_sum += s;
      ++v.npos;
    }
  }
  const int64_t k = (int64_t)blockIdx.y * p.m + j;
  part.max[k] = v.lse.max;
  part.sum[k] = v.lse.sum;
  part.pos_sum[k] = v.pos_sum;
  part.npos[k] = v.npos;
  part.nz[k] = v.nz;
}

// Column statistics, second pass: combine the chunks of column j in chunk order.
__global__ void __launch_bounds__(kBlockThreads)
    col_combine_kernel(const LossParams p, ColumnPartials part, int64_t chunks, LineStats cols,
                       float* col_lse_out) {
  const int64_t j = (int64_t)blockIdx.x * kBlockThreads + threadIdx.x;
  if (j >= p.m)
    return;
  RowPartial r;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t k = c * p.m + j;
    r.lse.merge(part.max[k], part.sum[k]);
    r.pos_sum += part.pos_sum[k];
    r.npos += part.npos[k];
    r.nz += part.nz[k];
  }
  finish_line(p, r, false, *p.logit_scale, j, cols, col_lse_out);
}

// Sums the valid lines in a fixed order (double accumulation); one block.  Writes the reduced
// loss and the valid counts that backward uses for MEAN.
__device__ inline void sum_lines(const LineStats& s, int64_t count, double* total, int64_t* valid) {
  double acc = 0.0;
  double cnt = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += kBlockThreads) {
    const bool ok = s.npos[k] != 0 && s.nz[k] > 0; // npos == -1 (bad target) counts
    if (ok) {
      acc += s.loss[k];
      cnt += 1.0;
    }
  }
  *total = block_sum(acc);
  *valid = (int64_t)block_sum(cnt);
}

__global__ void __launch_bounds__(kBlockThreads)
    reduce_loss_kernel(const LossParams p, LineStats rows, LineStats cols, float* loss,
                       int64_t* valid_counts) {
  double rsum, csum = 0.0;
  int64_t rcnt, ccnt = 0;
  sum_lines(rows, p.n, &rsum, &rcnt);
  if (p.symmetric)
    sum_lines(cols, p.m, &csum, &ccnt);
  if (threadIdx.x != 0)
    return;
  valid_counts[0] = rcnt;
  valid_counts[1] = ccnt;
  const float scale = *p.logit_scale;
  double out;
  if (p.reduction == FNCE_REDUCTION_SUM) {
    out = p.symmetric ? 0.5 * (rsum + csum) : rsum;
  } else { // MEAN (NONE never gets here)
    const double rmean = rcnt > 0 ? rsum / (double)rcnt : 0.0;
    const double cmean = ccnt > 0 ? csum / (double)ccnt : 0.0;
    out = p.symmetric ? 0.5 * (rmean + cmean) : rmean;
  }
  if (!isfinite(scale))
    out = NAN;
  if (loss)
    loss[0] = (float)out; // NULL under REDUCTION_NONE: only the counts are wanted
}

// REDUCTION_NONE: n row values then m column values.
__global__ void copy_losses_kernel(const float* row_loss, const float* col_loss, int64_t n,
                                   int64_t m, float* loss) {
  const int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (k < n)
    loss[k] = row_loss[k];
  else if (k < n + m)
    loss[k] = col_loss[k - n];
}

// Weight of line `idx` in the loss: dL/dℓ_idx (0 for an invalid line, NaN for a bad target).
__device__ __forceinline__ float line_weight(const LossParams& p, const int64_t* npos,
                                             const int64_t* nz, int64_t idx, int64_t offset,
                                             const float* grad_loss, int64_t valid_count) {
  if (npos[idx] < 0)
    return NAN;
  if (npos[idx] == 0 || nz[idx] == 0)
    return 0.f;
  if (p.reduction == FNCE_REDUCTION_NONE)
    return grad_loss[offset + idx];
  float w = grad_loss[0];
  if (p.reduction == FNCE_REDUCTION_MEAN)
    w /= (float)valid_count;
  return p.symmetric ? 0.5f * w : w;
}

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <> __device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

struct BackwardParams {
  const float* row_lse;
  const float* col_lse;
  const int64_t* row_npos;
  const int64_t* row_nz;
  const int64_t* col_npos;
  const int64_t* col_nz;
  const int64_t* valid_counts; // [rows, columns], from forward
  const float* grad_loss;
  float* grad_scale_rows; // n partial Σ_j G_ij · sim_ij
};

// One block per row i: dlogits_ij = scale · G_ij in the input dtype, and Σ_j G_ij sim_ij.
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    dlogits_kernel(const LossParams p, const BackwardParams b, T* dlogits) {
  const int64_t i = blockIdx.x;
  const float scale = *p.logit_scale;
  const int64_t t = target_of(p, i);
  const float w_row = line_weight(p, b.row_npos, b.row_nz, i, 0, b.grad_loss, b.valid_counts[0]);
  const float lse_i = b.row_lse[i];
  const float inv_np_i = b.row_npos[i] > 0 ? 1.f / (float)b.row_npos[i] : 0.f;
  const float* sim_row = p.sim + i * p.m;
  T* out_row = dlogits + i * p.m;
  double gs = 0.0;
  for (int64_t j = threadIdx.x; j < p.m; j += kBlockThreads) {
    const float sim = sim_row[j];
    const float s = scale * sim;
    const bool pos = is_positive(p, i, j, t);
    const bool z = in_normalizer(p, i, j, pos);
    float g = 0.f;
    if (w_row != 0.f) // also true for NaN: a bad-target row propagates NaN
      g += w_row * ((z ? expf(s - lse_i) : 0.f) - (pos ? inv_np_i : 0.f));
    if (p.symmetric) {
      const float w_col =
          line_weight(p, b.col_npos, b.col_nz, j, p.n, b.grad_loss, b.valid_counts[1]);
      if (w_col != 0.f) {
        const float inv_np_j = b.col_npos[j] > 0 ? 1.f / (float)b.col_npos[j] : 0.f;
        g += w_col * ((z ? expf(s - b.col_lse[j]) : 0.f) - (pos ? inv_np_j : 0.f));
      }
    }
    out_row[j] = from_float<T>(scale * g);
    gs += (double)g * (double)sim;
  }
  gs = block_sum(gs);
  if (threadIdx.x == 0)
    b.grad_scale_rows[i] = (float)gs;
}

template <typename T> __device__ __forceinline__ float to_float(T x);
template <> __device__ __forceinline__ float to_float<float>(float x) {
  return x;
}
template <> __device__ __forceinline__ float to_float<__half>(__half x) {
  return __half2float(x);
}
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

constexpr float kNormEps = 1e-12f; // COSINE clamps the norms at this (DESIGN §1)

// COSINE, forward: x̂_i = x_i / max(‖x_i‖, ε) in f32 (dense, ld d) and the unclamped ‖x_i‖;
// one block per row.  (What users do: F.normalize, then the GEMM.)
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    normalise_rows_kernel(const T* x, int64_t ld, int64_t d, float* xhat, float* norms) {
  const int64_t i = blockIdx.x;
  double ss = 0.0;
  for (int64_t k = threadIdx.x; k < d; k += kBlockThreads) {
    const double v = to_float<T>(x[i * ld + k]);
    ss += v * v;
  }
  ss = block_sum(ss);
  const float nrm = (float)sqrt(ss);
  const float inv = 1.f / fmaxf(nrm, kNormEps);
  for (int64_t k = threadIdx.x; k < d; k += kBlockThreads)
    xhat[i * d + k] = to_float<T>(x[i * ld + k]) * inv;
  if (threadIdx.x == 0)
    norms[i] = nrm;
}

// COSINE, backward through the normalisation: with ĝ = dL/dx̂_i (f32, from the GEMMs),
//   dL/dx_i = (ĝ − (ĝ·x̂_i) x̂_i) / ‖x_i‖        when ‖x_i‖ > ε,
//   dL/dx_i = ĝ / ε                             when the norm is clamped (the max is flat).
template <typename T>
__global__ void __launch_bounds__(kBlockThreads)
    normalise_rows_backward_kernel(const float* ghat, const float* xhat, const float* norms,
                                   int64_t d, T* grad) {
  const int64_t i = blockIdx.x;
  double dot = 0.0;
  for (int64_t k = threadIdx.x; k < d; k += kBlockThreads)
    dot += (double)ghat[i * d + k] * (double)xhat[i * d + k];
  dot = block_sum(dot);
  const float nrm = norms[i];
  const bool clamped = !(nrm > kNormEps);
  const float inv = 1.f / fmaxf(nrm, kNormEps);
  for (int64_t k = threadIdx.x; k < d; k += kBlockThreads) {
    const float g = ghat[i * d + k] - (clamped ? 0.f : (float)dot * xhat[i * d + k]);
    grad[i * d + k] = from_float<T>(g * inv);
  }
}

// grad_logit_scale = Σ_i partial_i, fixed order; one block.
__global__ void __launch_bounds__(kBlockThreads)
    sum_grad_scale_kernel(const float* partial, int64_t n, float* out) {
  double acc = 0.0;
  for (int64_t k = threadIdx.x; k < n; k += kBlockThreads)
    acc += partial[k];
  acc = block_sum(acc);
  if (threadIdx.x == 0)
    *out = (float)acc;
}

} // namespace flashnce::naive
