/* FlashNCE — fused contrastive losses (InfoNCE, CLIP, NT-Xent, SupCon, VAE-prior) without the
 * n×m similarity matrix.  C99 public API; needs no CUDA header.  See DESIGN.md §1–2 for the
 * mathematics and README.md for the presets.
 *
 * Conventions
 *  - Every pointer lives in the backend's memory: device memory for FNCE_BACKEND_CUDA, host
 *    memory for FNCE_BACKEND_CPU (the f64 reference) and FNCE_BACKEND_HOST (f32, BLAS, threads).
 *  - CUDA calls are asynchronous on `stream` (a cudaStream_t, NULL = legacy default stream); they
 *    never allocate and never synchronise.  Workspace follows CUB's protocol: ask for its size,
 *    pass at least that many bytes (NULL is fine when the size is 0).
 *  - Bad input returns a status, writes no output, and leaves a per-thread message naming the
 *    argument and its value (fnceGetLastErrorMessage).
 *  - Outputs (loss, LSEs, gradients, grad_logit_scale) are overwritten, never accumulated into.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(FLASHNCE_SHARED)
#  ifdef FLASHNCE_BUILDING
#    define FNCE_API __declspec(dllexport)
#  else
#    define FNCE_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define FNCE_API __attribute__((visibility("default")))
#else
#  define FNCE_API
#endif

#define FNCE_VERSION_MAJOR 0
#define FNCE_VERSION_MINOR 1
#define FNCE_VERSION_PATCH 0

typedef enum {
  FNCE_SUCCESS = 0,
  FNCE_ERROR_INVALID_VALUE,
  FNCE_ERROR_NOT_SUPPORTED,
  FNCE_ERROR_WORKSPACE_TOO_SMALL,
  FNCE_ERROR_CUDA,
  FNCE_ERROR_INTERNAL
} fnceStatus_t;

/* CUDA: the GPU kernels.  CPU: the f64 reference (the oracle; plain loops, slow).  HOST: the fast
 * CPU backend: f32 logit blocks from a BLAS sgemm, the online LSE on them, OpenMP threads over
 * row blocks; O(n + m) workspace plus a block per thread; bitwise deterministic, also across
 * thread counts.  HOST and CPU take host pointers and run synchronously (stream ignored). */
typedef enum { FNCE_BACKEND_CUDA = 0, FNCE_BACKEND_CPU, FNCE_BACKEND_HOST } fnceBackend_t;
typedef enum { FNCE_F32 = 0, FNCE_F16, FNCE_BF16 } fnceDataType_t;
typedef enum { FNCE_SIM_DOT = 0, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST } fnceSimilarity_t;
typedef enum {
  FNCE_POSITIVES_DIAGONAL = 0,
  FNCE_POSITIVES_TARGETS,
  FNCE_POSITIVES_LABELS,
  FNCE_POSITIVES_VIEW_PAIRS
} fncePositives_t;
typedef enum { FNCE_NORMALIZER_ALL = 0, FNCE_NORMALIZER_NEGATIVES } fnceNormalizer_t;
typedef enum { FNCE_DIRECTION_ROWS = 0, FNCE_DIRECTION_SYMMETRIC } fnceDirection_t;
typedef enum { FNCE_REDUCTION_MEAN = 0, FNCE_REDUCTION_SUM, FNCE_REDUCTION_NONE } fnceReduction_t;

typedef struct fnceLossParams {
  size_t struct_size; /* set by fnceLossParamsInit; lets the struct grow compatibly */
  fnceBackend_t backend;
  fnceDataType_t dtype; /* of a, b, grad_a, grad_b */
  int64_t n, m, d;
  const void* a;
  int64_t lda; /* lda/ldb 0 means d */
  const void* b;
  int64_t ldb;              /* b == NULL: self mode (b is a, m must equal n) */
  const float* logit_scale; /* one float, in the backend's memory */
  fnceSimilarity_t similarity;
  fncePositives_t positives;
  const int64_t* targets; /* n entries, TARGETS; < 0 ignores the row, >= m makes its loss NaN */
  const int64_t* labels_a;
  const int64_t* labels_b; /* LABELS; labels_b NULL in self mode */
  int exclude_self;        /* forced on in self mode */
  fnceNormalizer_t normalizer;
  fnceDirection_t direction;
  fnceReduction_t reduction;
  int allow_tf32; /* f32 inputs may use TF32 tensor cores */
} fnceLossParams;

/* Defaults: CUDA, F32, InfoNCE (DOT, DIAGONAL, NORMALIZER_ALL, ROWS, MEAN), no TF32. */
FNCE_API fnceStatus_t fnceLossParamsInit(fnceLossParams* p);
FNCE_API const char* fnceGetStatusString(fnceStatus_t s);
/* What the last failing call on this thread found wrong, in words ("" after a success). */
FNCE_API const char* fnceGetLastErrorMessage(void);

FNCE_API fnceStatus_t fnceForwardWorkspaceSize(const fnceLossParams* p, size_t* bytes);
/* loss: 1 value, or n (n + m if SYMMETRIC) for REDUCTION_NONE.
 * row_lse: n floats (may be NULL), LSE over Z(i), -inf where Z(i) is empty; backward needs it.
 * col_lse: m floats, SYMMETRIC only (may be NULL). */
FNCE_API fnceStatus_t fnceForward(const fnceLossParams* p, float* loss, float* row_lse,
                                  float* col_lse, void* workspace, size_t workspace_bytes,
                                  void* stream);

FNCE_API fnceStatus_t fnceBackwardWorkspaceSize(const fnceLossParams* p, size_t* bytes);
/* row_lse (and col_lse for SYMMETRIC) as written by fnceForward on the same inputs: required.
 * grad_loss: 1 value, or as many as loss had for REDUCTION_NONE.
 * grad_a / grad_b: dtype, dense n×d / m×d; either may be NULL.  In self mode everything lands in
 * grad_a and grad_b must be NULL.  grad_logit_scale: one float, may be NULL. */
FNCE_API fnceStatus_t fnceBackward(const fnceLossParams* p, const float* row_lse,
                                   const float* col_lse, const float* grad_loss, void* grad_a,
                                   void* grad_b, float* grad_logit_scale, void* workspace,
                                   size_t workspace_bytes, void* stream);

/* ---- Conveniences, so that C/C++ callers need no CUDA header (not part of the hot path). ---- */
typedef enum {
  FNCE_COPY_HOST_TO_BACKEND = 0,
  FNCE_COPY_BACKEND_TO_HOST,
  FNCE_COPY_BACKEND_TO_BACKEND
} fnceCopyKind_t;

/* 1 when the backend can run now (CUDA: a device is present), else 0. */
FNCE_API int fnceBackendIsAvailable(fnceBackend_t backend);
/* Human-readable name of the device a backend runs on ("CPU reference (f64)", "NVIDIA H200"…). */
FNCE_API fnceStatus_t fnceGetDeviceName(fnceBackend_t backend, char* name, size_t capacity);
FNCE_API fnceStatus_t fnceMalloc(fnceBackend_t backend, void** ptr, size_t bytes);
FNCE_API fnceStatus_t fnceFree(fnceBackend_t backend, void* ptr);
/* Synchronous copy between host memory and the backend's memory. */
FNCE_API fnceStatus_t fnceMemcpy(fnceBackend_t backend, void* dst, const void* src, size_t bytes,
                                 fnceCopyKind_t kind);
/* Waits for all work queued on `stream` (CUDA); a no-op on the CPU backend. */
FNCE_API fnceStatus_t fnceSynchronize(fnceBackend_t backend, void* stream);

#ifdef __cplusplus
} /* extern "C" */
#endif
