// The naive baseline: what users run today for an InfoNCE-family loss on a GPU.
//
//   forward:  sim = A·Bᵀ              one cuBLAS GEMM into an n×m f32 matrix (materialised)
//             per row i (and column j when SYMMETRIC): LSE over Z(i), mean positive logit,
//             ℓ_i = LSE_i − [NEGATIVES]·log|Z(i)| − mean_{p∈P(i)} s_ip,  then MEAN / SUM / NONE
//   backward: dlogits = scale · G     an n×m matrix in the input dtype (materialised), with
//             G_ij = w_i (P_ij − [j∈P(i)]/|P(i)|) + w_j (Pᶜ_ij − [i∈Pᶜ(j)]/|Pᶜ(j)|)
//             grad_a = dlogits·B,  grad_b = dlogitsᵀ·A   two more cuBLAS GEMMs
//             (self mode: grad_a = dlogits·A + dlogitsᵀ·A)
//
// It takes the same fnceLossParams as the library (device pointers, b == NULL = self mode) and
// implements the DOT similarity with every positives / normaliser / direction / reduction mode
// (COSINE too, as users write it: rows normalised into f32 copies, f32 GEMMs, f32 dlogits, then
// the backward of the normalisation — correct, not benchmarked; NEG_SQ_DIST is refused), so
// that the benchmark compares two correct implementations of the same contract (naive_test checks
// it against the CPU reference).  Unlike the library it allocates (the n×m matrices), keeps state
// between forward and backward (like an autograd graph), and is built only with nvcc (cuBLAS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "flashnce/flashnce.h"

namespace flashnce::naive {

// Device bytes that NaiveLoss allocates for a problem: the n×m f32 similarity matrix, the n×m
// dlogits matrix in the input dtype (backward only) and O(n + m) per-row / per-column scratch.
struct Footprint {
  size_t similarity_bytes = 0; // n·m·4
  size_t dlogits_bytes = 0;    // n·m·sizeof(dtype), 0 without backward
  size_t scratch_bytes = 0;    // O(n + m)
  size_t total() const { return similarity_bytes + dlogits_bytes + scratch_bytes; }
};
Footprint footprint(int64_t n, int64_t m, fnceDataType_t dtype, bool with_backward);

class NaiveLoss {
public:
  NaiveLoss();
  ~NaiveLoss();
  NaiveLoss(const NaiveLoss&) = delete;
  NaiveLoss& operator=(const NaiveLoss&) = delete;

  // Allocates (grow-only) what forward/backward need for this shape, so that timed calls do not
  // allocate.  forward() reserves by itself when a call is larger than what was reserved.
  fnceStatus_t reserve(int64_t n, int64_t m, fnceDataType_t dtype, bool with_backward);

  // Same outputs as fnceForward (loss, row_lse, col_lse may be NULL except loss); keeps the
  // similarity matrix and the per-row counts for backward.  Asynchronous on `stream`.
  fnceStatus_t forward(const fnceLossParams& p, float* loss, float* row_lse, float* col_lse,
                       void* stream);
  // Same outputs as fnceBackward; must follow forward() on the same params and inputs.
  // row_lse / col_lse may be NULL: the copies saved by forward() are used then.
  fnceStatus_t backward(const fnceLossParams& p, const float* row_lse, const float* col_lse,
                        const float* grad_loss, void* grad_a, void* grad_b, float* grad_logit_scale,
                        void* stream);

  // Bytes currently allocated on the device by this object.
  size_t allocated_bytes() const;
  // What the last failing call found wrong.
  const std::string& last_error() const { return error_; }

private:
  struct Impl;
  Impl* impl_;
  std::string error_;
};

} // namespace flashnce::naive
