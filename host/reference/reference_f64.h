// Internal: the CPU reference (the oracle) in double precision.
//
// host/backend.h declares the backend entry points (reference::forward / reference::backward),
// which read the inputs in their dtype and write float / dtype outputs.  They are thin wrappers
// around the functions below, which take the inputs already converted to double and return every
// result in double.  Tests call these directly, e.g. for finite differences on the reference's own
// loss, where rounding the loss to float would swamp the difference.
//
// The mathematics is DESIGN.md §1; the rules for edge cases (invalid rows, out-of-range targets,
// non-finite scale) are listed at the top of reference.cpp.  Nothing here allocates n×m: the
// logits are recomputed one row (or column) at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "host/backend.h"

namespace flashnce {
namespace reference {

// a and b as doubles, dense row-major (n×d and m×d).  In self mode `b` is left empty: the loss
// reads `a` on both sides, so that a perturbation of `a` moves both (finite differences).
struct InputsF64 {
  std::vector<double> a;
  std::vector<double> b;
  double scale = 0.0;
};

// Reads a/b (dtype, strides lda/ldb) and *logit_scale.
InputsF64 load_inputs(const Problem& pr);

struct ForwardF64 {
  std::vector<double> loss;    // pr.loss_count values, as fnceForward's `loss`
  std::vector<double> row_lse; // n: LSE over Z(i), -inf where Z(i) is empty
  std::vector<double> col_lse; // m when SYMMETRIC, else empty
};

struct BackwardF64 {
  std::vector<double> grad_a; // n×d (self mode: both sides' gradients)
  std::vector<double> grad_b; // m×d; empty in self mode
  double grad_logit_scale = 0.0;
};

// The gradient as the naive implementation computes it in a 16-bit (or TF32) dtype: every
// G_ij = dL/ds_ij rounded to nearest (even) with that many significant bits before it multiplies
// the inputs (bf16: 8, f16 and TF32: 11; exponent range not modelled).  DESIGN §5 bounds the
// kernels' gradient error by twice the error this rounding causes.  none: exact (the oracle).
enum class GradRounding { none = 0, bf16 = 8, f16 = 11, tf32 = 11 };
double round_significant(double x, int bits);

// May throw std::bad_alloc (the public wrappers turn it into a status).
ForwardF64 forward_f64(const Problem& pr, const InputsF64& in);
// grad_loss: pr.loss_count values.
BackwardF64 backward_f64(const Problem& pr, const InputsF64& in, const double* grad_loss,
                         GradRounding rounding = GradRounding::none);

} // namespace reference
} // namespace flashnce
