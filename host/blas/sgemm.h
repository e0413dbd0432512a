// Internal: the two f32 GEMM shapes the host backend needs, row-major, through a BLAS sgemm when
// the build found one (FLASHNCE_HAVE_BLAS: OpenBLAS, CMake's FindBLAS) and else through the
// built-in blocked loops of sgemm.cpp.  Sizes are the backend's blocks: every argument fits an int.
#pragma once

namespace flashnce {
namespace host_backend {

// C (m x n, ldc) = A (m x k, lda) . B^T, B being n x k (ldb): the logit block X . Y^T.
void gemm_abt(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
              int ldc);

// C (m x n, ldc) += A (m x k, lda) . B (k x n, ldb): the gradient block G . Y.
void gemm_ab_accumulate(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                        float* c, int ldc);

// C (m x n, ldc) += A^T . B, A being k x m (lda), B k x n (ldb): the column side's G^T . X.
void gemm_atb_accumulate(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                         float* c, int ldc);

// "OpenBLAS" (or the BLAS CMake found), or "built-in" for the fallback loops.
const char* gemm_library();

// The fallback loops themselves, always compiled, so that a test can compare them with the BLAS.
void builtin_gemm_abt(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                      float* c, int ldc);
void builtin_gemm_ab_accumulate(int m, int n, int k, const float* a, int lda, const float* b,
                                int ldb, float* c, int ldc);
void builtin_gemm_atb_accumulate(int m, int n, int k, const float* a, int lda, const float* b,
                                 int ldb, float* c, int ldc);

} // namespace host_backend
} // namespace flashnce
