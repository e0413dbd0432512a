// Kernel-side parameters of the contrastive-loss kernels: plain old data, passed by value to every
// kernel as `__grid_constant__ const`.  Built by the host dispatch (host/cuda/dispatch.cpp) from a
// validated flashnce::Problem; no CUDA header needed, no host type inside.
//
// Indices: i runs over the n rows of `a`, j over the m rows of `b` (the columns of the logit
// matrix s_ij = scale * sim(a_i, b_j)).  Every offset into a, b, gradients and the workspace is
// 64-bit.  Nothing of size n x m is ever stored anywhere.
#pragma once

#include <cstdint>

namespace flashnce {
namespace kernels {

enum class Similarity : int32_t { dot = 0, cosine = 1, neg_sq_dist = 2 };
enum class Positives : int32_t { diagonal = 0, targets = 1, labels = 2, view_pairs = 3 };
enum class Reduction : int32_t { mean = 0, sum = 1, none = 2 };

// One column's (or one row's) running statistics over a set of logits:
//   max  : running maximum over the normaliser set (-inf while empty)
//   sum  : sum of exp(s - max) over the normaliser set (0 while empty)
//   pos  : sum of the positives' logits
//   npos : number of positives, nz: size of the normaliser set
struct Stats {
  float max;
  float sum;
  float pos;
  int32_t npos;
  int32_t nz;
};

// Partial statistics of one row (or column) over a part of its logits, kept by the tensor-core
// forward in the log2 domain (s2 = s * log2(e)): max2 the running maximum of s2 over the
// normaliser set (-inf while empty), sum = sum of 2^(s2 - max2) over it, pos2 the sum of the
// positives' s2, npos their count.  |Z| is not kept: the merge derives it from npos.
struct PartialStats {
  float max2;
  float sum;
  float pos2;
  int32_t npos;
};

// The problem, as both directions see it.
struct ProblemParams {
  const void* a; // n x d, row stride lda (elements), dtype of the instantiation
  const void* b; // m x d, row stride ldb; equals a in self mode
  int64_t lda, ldb;
  int64_t n, m, d;
  const float* logit_scale; // one float in device memory
  Similarity similarity;
  Positives positives;
  const int64_t* targets;  // n entries (TARGETS)
  const int64_t* labels_a; // n entries (LABELS)
  const int64_t* labels_b; // m entries (LABELS); labels_a in self mode
  int32_t exclude_self;    // 0/1 (1 in self mode)
  int32_t negatives_only;  // normaliser = NEGATIVES
  int32_t symmetric;       // direction = SYMMETRIC
  int32_t self_mode;       // b is a (grad_b folded into grad_a)
  Reduction reduction;
  // Per-row pre-pass results (workspace): COSINE: 1 / max(|x|, 1e-12);  NEG_SQ_DIST: |x|^2.
  float* norm_a; // n
  float* norm_b; // m (may alias norm_a in self mode)
};

struct ForwardParams {
  ProblemParams pr;
  // Outputs.
  float* loss;    // 1, or n (+ m) for NONE
  float* row_lse; // n, may be null
  float* col_lse; // m, may be null (SYMMETRIC only)
  // Workspace.
  float* row_loss;    // n: per-row loss (0 for an invalid row)
  int32_t* row_valid; // n: 1 when the row counts in MEAN
  Stats* col_partial; // grid_rows x m: each row-block's partial column statistics (SYMMETRIC)
  float* col_loss;    // m (SYMMETRIC)
  int32_t* col_valid; // m (SYMMETRIC)
  int32_t grid_rows;  // G: number of row-blocks of the main kernel
  // The tensor-core forward (ForwardMmaTraits): a row_groups x col_splits grid; block (g, s) runs
  // the row tiles g, g + row_groups, ... over the column tiles of split s, and owns
  // row_partial[s][rows of its tiles] and (SYMMETRIC) col_partial_rows[g][columns of split s].
  // Both depend on n and m only (never on the device), so results are bitwise the same everywhere.
  PartialStats* row_partial;      // col_splits x n
  PartialStats* col_partial_rows; // row_groups x m (SYMMETRIC)
  int32_t row_groups, col_splits;
};

// What the gradient kernel needs per row (or per column): G_ij contributions are
//   w_i * ([j in Z(i)] exp(s_ij - lse_i) - [j in P(i)] * inv_npos_i)
// with w_i = 0 for an invalid row (then nothing else is read for it).
struct GradStats {
  float lse;
  float w;
  float inv_npos;
};

struct BackwardParams {
  ProblemParams pr;
  const float* row_lse;   // n (forward's)
  const float* col_lse;   // m (SYMMETRIC)
  const float* grad_loss; // 1, or n (+ m) for NONE
  // Outputs (dtype of the instantiation), dense n x d / m x d; either may be null.
  void* grad_a;
  void* grad_b;
  float* grad_logit_scale; // may be null
  // Workspace.
  int32_t* row_npos;      // n
  int32_t* row_nz;        // n
  int32_t* col_npos;      // m (SYMMETRIC)
  int32_t* col_nz;        // m (SYMMETRIC)
  GradStats* row_stats;   // n
  GradStats* col_stats;   // m (SYMMETRIC; else unused)
  float* scale_partial;   // one per block of the row-gradient launch
  int32_t transposed;     // set per launch of the gradient kernel: 0 rows = a, 1 rows = b
  int32_t grad_pass_cols; // columns of d per pass of the gradient kernel (set by run_backward)
  // Column splits of the tensor-core gradient kernel (grad_splits in host/cuda/dispatch.cpp): a
  // launch with few row tiles runs row tiles x splits blocks, block (t, s) over the column tiles of
  // split s; each block writes its f32 accumulator and row sums to the partials, which
  // grad_split_reduce_kernel adds in split order (deterministic) into the output.
  int32_t splits_rows, splits_cols; // of the rows launch (grad_a) and of the columns launch
  int32_t grad_splits;              // of the current launch (set by run_backward)
  float* grad_partial;              // max splits x rows x d (f32)
  float* sum_partial;               // max splits x rows x 2: sum_j G, sum_j G sim
};

} // namespace kernels
} // namespace flashnce
