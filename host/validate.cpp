// Every host-side rule of the public API, checked before any backend runs (see validate.h).
#include "host/validate.h"

#include <cstdint>
#include <limits>

#include "host/error.h"

namespace flashnce {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// a * b <= limit for a, b >= 1 (no overflow in the test itself).
bool product_fits(int64_t a, int64_t b, int64_t limit = kInt64Max) {
  return a <= limit / b;
}

// An enum is range-checked through its integer value: a caller may store anything in it.
template <typename E> bool in_range(const E& v, int lo, int hi) {
  const int x = raw_enum(v);
  return x >= lo && x <= hi;
}

fnceStatus_t check_enums(const fnceLossParams& p) {
  if (!in_range(p.backend, FNCE_BACKEND_CUDA, FNCE_BACKEND_HOST))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "backend must be FNCE_BACKEND_CUDA (0), FNCE_BACKEND_CPU (1) or FNCE_BACKEND_HOST "
                "(2), got %d",
                raw_enum(p.backend));
  if (!in_range(p.dtype, FNCE_F32, FNCE_BF16))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "dtype must be FNCE_F32 (0), FNCE_F16 (1) or FNCE_BF16 (2), got %d",
                raw_enum(p.dtype));
  if (!in_range(p.similarity, FNCE_SIM_DOT, FNCE_SIM_NEG_SQ_DIST))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "similarity must be FNCE_SIM_DOT (0), FNCE_SIM_COSINE (1) or "
                "FNCE_SIM_NEG_SQ_DIST (2), got %d",
                raw_enum(p.similarity));
  if (!in_range(p.positives, FNCE_POSITIVES_DIAGONAL, FNCE_POSITIVES_VIEW_PAIRS))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "positives must be FNCE_POSITIVES_DIAGONAL (0), _TARGETS (1), _LABELS (2) or "
                "_VIEW_PAIRS (3), got %d",
                raw_enum(p.positives));
  if (!in_range(p.normalizer, FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "normalizer must be FNCE_NORMALIZER_ALL (0) or FNCE_NORMALIZER_NEGATIVES (1), "
                "got %d",
                raw_enum(p.normalizer));
  if (!in_range(p.direction, FNCE_DIRECTION_ROWS, FNCE_DIRECTION_SYMMETRIC))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "direction must be FNCE_DIRECTION_ROWS (0) or FNCE_DIRECTION_SYMMETRIC (1), "
                "got %d",
                raw_enum(p.direction));
  if (!in_range(p.reduction, FNCE_REDUCTION_MEAN, FNCE_REDUCTION_NONE))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "reduction must be FNCE_REDUCTION_MEAN (0), _SUM (1) or _NONE (2), got %d",
                raw_enum(p.reduction));
  return FNCE_SUCCESS;
}

// rows x ld elements of `esize` bytes must be addressable with int64 element and byte offsets.
fnceStatus_t check_extent(const char* rows_name, int64_t rows, const char* ld_name, int64_t ld,
                          size_t esize) {
  const int64_t e = static_cast<int64_t>(esize);
  if (!product_fits(rows, ld) || !product_fits(rows * ld, e))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "%s * %s * sizeof(dtype) must fit in int64, got %s = %lld, %s = %lld, "
                "sizeof(dtype) = %lld",
                rows_name, ld_name, rows_name, static_cast<long long>(rows), ld_name,
                static_cast<long long>(ld), static_cast<long long>(e));
  return FNCE_SUCCESS;
}

} // namespace

fnceStatus_t validate(const fnceLossParams* params, Problem* out) {
  if (params == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE, "params must not be NULL, got NULL");
  if (params->struct_size == 0)
    return fail(FNCE_ERROR_INVALID_VALUE,
                "params->struct_size must be >= %zu (call fnceLossParamsInit first), got 0",
                sizeof(fnceLossParams));
  if (params->struct_size < sizeof(fnceLossParams))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "params->struct_size must be >= %zu (the fnceLossParams this library knows; was "
                "the caller built against an older flashnce.h?), got %zu",
                sizeof(fnceLossParams), params->struct_size);

  fnceLossParams p = *params; // only the prefix this library knows
  p.struct_size = sizeof(fnceLossParams);
  if (fnceStatus_t s = check_enums(p); s != FNCE_SUCCESS)
    return s;

  const bool self_mode = p.b == nullptr;
  if (p.n < 1)
    return fail(FNCE_ERROR_INVALID_VALUE, "n must be >= 1, got %lld", static_cast<long long>(p.n));
  if (p.d < 1)
    return fail(FNCE_ERROR_INVALID_VALUE, "d must be >= 1, got %lld", static_cast<long long>(p.d));
  if (self_mode) {
    if (p.m != p.n)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "m must equal n (= %lld) in self mode (b == NULL), got %lld",
                  static_cast<long long>(p.n), static_cast<long long>(p.m));
  } else if (p.m < 1) {
    return fail(FNCE_ERROR_INVALID_VALUE, "m must be >= 1, got %lld", static_cast<long long>(p.m));
  }
  if (p.n > kInt64Max - p.m)
    return fail(FNCE_ERROR_INVALID_VALUE, "n + m must fit in int64, got n = %lld, m = %lld",
                static_cast<long long>(p.n), static_cast<long long>(p.m));

  if (p.lda == 0)
    p.lda = p.d;
  if (p.lda < p.d)
    return fail(FNCE_ERROR_INVALID_VALUE, "lda must be 0 (meaning d) or >= d (= %lld), got %lld",
                static_cast<long long>(p.d), static_cast<long long>(params->lda));
  if (self_mode) {
    p.ldb = p.lda; // b is a
  } else {
    if (p.ldb == 0)
      p.ldb = p.d;
    if (p.ldb < p.d)
      return fail(FNCE_ERROR_INVALID_VALUE, "ldb must be 0 (meaning d) or >= d (= %lld), got %lld",
                  static_cast<long long>(p.d), static_cast<long long>(params->ldb));
  }
  const size_t esize = dtype_size(p.dtype);
  if (!product_fits(p.n, p.d) || !product_fits(p.m, p.d))
    return fail(FNCE_ERROR_INVALID_VALUE,
                "n * d and m * d must fit in int64, got n = %lld, m = %lld, d = %lld",
                static_cast<long long>(p.n), static_cast<long long>(p.m),
                static_cast<long long>(p.d));
  if (fnceStatus_t s = check_extent("n", p.n, "lda", p.lda, esize); s != FNCE_SUCCESS)
    return s;
  if (fnceStatus_t s = check_extent("m", p.m, "ldb", p.ldb, esize); s != FNCE_SUCCESS)
    return s;

  if (p.a == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE, "a must not be NULL, got NULL");
  if (p.logit_scale == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE, "logit_scale must not be NULL, got NULL");

  switch (p.positives) {
  case FNCE_POSITIVES_DIAGONAL:
    if (self_mode)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "positives = FNCE_POSITIVES_DIAGONAL is invalid in self mode (b == NULL): "
                  "exclude_self removes every positive; use FNCE_POSITIVES_VIEW_PAIRS (views "
                  "stacked [x; x']) or FNCE_POSITIVES_LABELS");
    if (p.n > p.m)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "positives = FNCE_POSITIVES_DIAGONAL needs n <= m, got n = %lld, m = %lld",
                  static_cast<long long>(p.n), static_cast<long long>(p.m));
    break;
  case FNCE_POSITIVES_TARGETS:
    if (p.targets == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "targets must not be NULL when positives = FNCE_POSITIVES_TARGETS, got NULL");
    break;
  case FNCE_POSITIVES_LABELS:
    if (p.labels_a == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "labels_a must not be NULL when positives = FNCE_POSITIVES_LABELS, got NULL");
    if (!self_mode && p.labels_b == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "labels_b must not be NULL when positives = FNCE_POSITIVES_LABELS and b is "
                  "given (NULL only in self mode), got NULL");
    break;
  case FNCE_POSITIVES_VIEW_PAIRS:
    if (!self_mode)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "positives = FNCE_POSITIVES_VIEW_PAIRS needs self mode (b == NULL), got b = %p",
                  p.b);
    if (p.n % 2 != 0)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "positives = FNCE_POSITIVES_VIEW_PAIRS needs an even n (two stacked views), "
                  "got n = %lld",
                  static_cast<long long>(p.n));
    break;
  }

  if (self_mode) {
    p.b = p.a;
    p.m = p.n;
    p.labels_b = p.labels_a;
    p.exclude_self = 1;
  } else {
    p.exclude_self = p.exclude_self != 0 ? 1 : 0;
  }
  p.allow_tf32 = p.allow_tf32 != 0 ? 1 : 0;

  out->p = p;
  out->self_mode = self_mode;
  out->loss_count = p.reduction != FNCE_REDUCTION_NONE        ? 1
                    : p.direction == FNCE_DIRECTION_SYMMETRIC ? p.n + p.m
                                                              : p.n;
  return FNCE_SUCCESS;
}

fnceStatus_t validate_forward_outputs(const Problem& /*pr*/, const float* loss,
                                      const float* /*row_lse*/, const float* /*col_lse*/) {
  if (loss == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE, "loss must not be NULL, got NULL");
  return FNCE_SUCCESS;
}

fnceStatus_t validate_backward_arguments(const Problem& pr, const float* row_lse,
                                         const float* col_lse, const float* grad_loss,
                                         const void* /*grad_a*/, const void* grad_b) {
  if (row_lse == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE,
                "row_lse must not be NULL (pass the row_lse written by fnceForward), got NULL");
  if (pr.p.direction == FNCE_DIRECTION_SYMMETRIC && col_lse == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE,
                "col_lse must not be NULL when direction = FNCE_DIRECTION_SYMMETRIC (pass the "
                "col_lse written by fnceForward), got NULL");
  if (grad_loss == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE, "grad_loss must not be NULL, got NULL");
  if (pr.self_mode && grad_b != nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE,
                "grad_b must be NULL in self mode (b == NULL: the whole gradient lands in "
                "grad_a), got %p",
                grad_b);
  return FNCE_SUCCESS;
}

fnceStatus_t validate_workspace(size_t needed, const void* workspace, size_t workspace_bytes) {
  if (needed == 0)
    return FNCE_SUCCESS;
  if (workspace_bytes < needed)
    return fail(FNCE_ERROR_WORKSPACE_TOO_SMALL,
                "workspace_bytes must be >= %zu for this problem (see fnce*WorkspaceSize), got %zu",
                needed, workspace_bytes);
  if (workspace == nullptr)
    return fail(FNCE_ERROR_INVALID_VALUE,
                "workspace must not be NULL when %zu bytes are needed, got NULL (with "
                "workspace_bytes = %zu)",
                needed, workspace_bytes);
  return FNCE_SUCCESS;
}

} // namespace flashnce
