// Internal: what the API layer (host/api.cpp) hands to a backend after validation.
// One-way layering: include/ <- host/ <- kernels/.  Nothing here is public.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flashnce/flashnce.h"

namespace flashnce {

// A validated, normalised view of fnceLossParams.  validate() (host/validate.h) builds it:
//  - lda/ldb resolved (0 -> d);
//  - self mode (b == NULL in the user's params): self_mode = true, p.b = p.a, p.ldb = p.lda,
//    p.m = p.n, p.labels_b = p.labels_a, p.exclude_self = 1;
//  - exclude_self normalised to 0/1.
// Backends read only this; they never re-check host-side rules.
struct Problem {
  fnceLossParams p;
  bool self_mode = false;
  int64_t loss_count = 1; // floats in `loss` / `grad_loss`: 1, or n (+ m if SYMMETRIC) for NONE
};

// Bytes per element of a dtype (4, 2, 2).
inline size_t dtype_size(fnceDataType_t t) { return t == FNCE_F32 ? 4 : 2; }

// ---- CPU reference backend (host/reference/): plain loops in double, the oracle. -------------
// Workspace is 0 bytes for both directions.  Backward recomputes the LSEs in double and does not
// read row_lse / col_lse (they were validated as present).
namespace reference {
fnceStatus_t forward(const Problem& pr, float* loss, float* row_lse, float* col_lse);
fnceStatus_t backward(const Problem& pr, const float* grad_loss, void* grad_a, void* grad_b,
                      float* grad_logit_scale);
} // namespace reference

// ---- Host backend (host/blas/): the fast CPU backend, f32 blocks through a BLAS sgemm. --------
// Host pointers, synchronous.  Workspace: O(n + m) for the per-row / per-column statistics plus
// one block of scratch per thread (the thread count is omp_get_max_threads() when the size is
// asked and when the call runs: a call that finds more threads than the workspace was sized for
// uses only as many as it holds scratch for).  Backward reads row_lse / col_lse, as CUDA does.
namespace host_backend {
fnceStatus_t device_name(char* name, size_t capacity);
// threads = 0: the size for omp_get_max_threads() threads (what the API's size queries return);
// threads = 1: the least a call accepts (it then runs one thread).
fnceStatus_t forward_workspace_size(const Problem& pr, int threads, size_t* bytes);
fnceStatus_t forward(const Problem& pr, float* loss, float* row_lse, float* col_lse,
                     void* workspace, size_t workspace_bytes);
fnceStatus_t backward_workspace_size(const Problem& pr, int threads, size_t* bytes);
fnceStatus_t backward(const Problem& pr, const float* row_lse, const float* col_lse,
                      const float* grad_loss, void* grad_a, void* grad_b, float* grad_logit_scale,
                      void* workspace, size_t workspace_bytes);
} // namespace host_backend

// ---- CUDA backend (host/cuda/ with kernels/, or host/cuda_unavailable.cpp). ------------------
// All pointers are device pointers; calls are asynchronous on `stream`, never allocate, never
// synchronise.  Workspace sizes are exact and O(n + m).
namespace cuda_backend {
bool available();
fnceStatus_t device_name(char* name, size_t capacity);
fnceStatus_t malloc(void** ptr, size_t bytes);
fnceStatus_t free(void* ptr);
fnceStatus_t memcpy(void* dst, const void* src, size_t bytes, fnceCopyKind_t kind);
fnceStatus_t synchronize(void* stream);

fnceStatus_t forward_workspace_size(const Problem& pr, size_t* bytes);
fnceStatus_t forward(const Problem& pr, float* loss, float* row_lse, float* col_lse,
                     void* workspace, size_t workspace_bytes, void* stream);
fnceStatus_t backward_workspace_size(const Problem& pr, size_t* bytes);
fnceStatus_t backward(const Problem& pr, const float* row_lse, const float* col_lse,
                      const float* grad_loss, void* grad_a, void* grad_b, float* grad_logit_scale,
                      void* workspace, size_t workspace_bytes, void* stream);
#if defined(FLASHNCE_EMULATED)
// Emulated builds only (tests): the tensor-core forward's work split, row_groups x col_splits,
// instead of forward_split()'s (clamped to the row and column tiles; 0, 0 restores it), so that
// small shapes reach what only large ones do: several column tiles per block (the Hopper
// forward's resident row tile reused) and several row tiles per block (its reload).
void set_forward_split_for_testing(int32_t row_groups, int32_t col_splits);
#endif
} // namespace cuda_backend

} // namespace flashnce
