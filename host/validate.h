// Validation of every host-side rule of the public API (DESIGN.md §2), CUTLASS can_implement
// style: a public entry point calls these first and reaches a backend only when all of them have
// returned FNCE_SUCCESS.  Each failure returns its status, records a per-thread message naming the
// argument and its value (flashnce::fail), and writes nothing the caller owns.
#pragma once

#include <cstddef>
#include <cstring>

#include "flashnce/flashnce.h"
#include "host/backend.h"

namespace flashnce {

// The rules on fnceLossParams alone.  On success `*out` holds the normalised problem (see
// host/backend.h: lda/ldb resolved, self mode expanded, exclude_self/allow_tf32 made 0/1,
// loss_count set); on failure `*out` is untouched.
//
// struct_size must be >= sizeof(fnceLossParams) as this library was compiled: a caller built
// against a newer header with a larger struct is accepted (only the known prefix is read); a
// caller that never called fnceLossParamsInit (struct_size 0) or was built against an older,
// smaller struct is rejected.
fnceStatus_t validate(const fnceLossParams* p, Problem* out);

// Forward outputs: loss is required; row_lse optional.  col_lse is optional and is written only
// for FNCE_DIRECTION_SYMMETRIC (ignored, never written, for ROWS).
fnceStatus_t validate_forward_outputs(const Problem& pr, const float* loss, const float* row_lse,
                                      const float* col_lse);

// Backward inputs/outputs: row_lse and grad_loss required; col_lse required for SYMMETRIC;
// grad_b must be NULL in self mode (everything lands in grad_a).
fnceStatus_t validate_backward_arguments(const Problem& pr, const float* row_lse,
                                         const float* col_lse, const float* grad_loss,
                                         const void* grad_a, const void* grad_b);

// Workspace protocol (CUB's): at least `needed` bytes; a NULL workspace is fine only when
// `needed` is 0.
fnceStatus_t validate_workspace(size_t needed, const void* workspace, size_t workspace_bytes);

// The integer stored in an enum field or parameter, read through its bytes: a C caller may store
// any int there, and loading an out-of-range value *as the enum* is undefined behaviour in C++
// (UBSan's -fsanitize=enum flags it).  Every range check goes through this.
template <typename E> int raw_enum(const E& v) {
  static_assert(sizeof(E) == sizeof(int), "the API's enums are int-sized");
  int x;
  std::memcpy(&x, &v, sizeof x);
  return x;
}

} // namespace flashnce
