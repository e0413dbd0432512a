// The host backend's GEMMs: a BLAS sgemm when the build has one, else the built-in loops below.
//
// The built-in loops are written for the compiler's vectoriser, not by hand: the innermost loop
// runs along a contiguous row of C with one broadcast A element, so each C element accumulates
// its k products in order (the result does not depend on the vector width), and four rows of C
// share every load of B.  gemm_abt first packs a 64-deep slice of B^T (at most 64 x 256 floats,
// on the stack) so that this inner loop reads B contiguously too.  On x86-64 GCC builds the
// loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time
// (target_clones).  They reach a fraction of a tuned BLAS: they are the fallback for machines
// without one.
#include "host/blas/sgemm.h"
#include "host/blas/vector_math.h" // FLASHNCE_CLONES

#include <algorithm>

#if defined(FLASHNCE_HAVE_BLAS)
// The CBLAS entry point (OpenBLAS, Netlib CBLAS, BLIS, MKL all export it), declared here so that
// the build needs no vendor header.  Enumerators from cblas.h: RowMajor 101, NoTrans 111, Trans
// 112.
extern "C" void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                            const float* a, int lda, const float* b, int ldb, float beta, float* c,
                            int ldc);
#endif

namespace flashnce {
namespace host_backend {
namespace {

constexpr int kPackDepth = 64;
constexpr int kPackWidth = 256;

// C rows [i, i + R) += A[:, k0 .. k0 + kb) . P, P = kb x nb contiguous (ldp = nb).
template <int R>
inline void rows_update(int nb, int kb, const float* a, int lda, const float* p, int ldp, float* c,
                        int ldc) {
  for (int kk = 0; kk < kb; ++kk) {
    float av[R];
    for (int r = 0; r < R; ++r)
      av[r] = a[r * lda + kk];
    const float* __restrict prow = p + kk * ldp;
    for (int r = 0; r < R; ++r) {
      float* __restrict crow = c + r * ldc;
      for (int j = 0; j < nb; ++j)
        crow[j] += av[r] * prow[j];
    }
  }
}

} // namespace

FLASHNCE_CLONES
void builtin_gemm_abt(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                      float* c, int ldc) {
  float pack[kPackDepth * kPackWidth];
  for (int j0 = 0; j0 < n; j0 += kPackWidth) {
    const int nb = std::min(kPackWidth, n - j0);
    for (int i = 0; i < m; ++i)
      std::fill(c + i * ldc + j0, c + i * ldc + j0 + nb, 0.0f);
    for (int k0 = 0; k0 < k; k0 += kPackDepth) {
      const int kb = std::min(kPackDepth, k - k0);
      for (int jj = 0; jj < nb; ++jj) // pack[kk][jj] = B[j0 + jj][k0 + kk]
        for (int kk = 0; kk < kb; ++kk)
          pack[kk * nb + jj] = b[static_cast<long>(j0 + jj) * ldb + k0 + kk];
      int i = 0;
      for (; i + 4 <= m; i += 4)
        rows_update<4>(nb, kb, a + static_cast<long>(i) * lda + k0, lda, pack, nb,
                       c + static_cast<long>(i) * ldc + j0, ldc);
      for (; i < m; ++i)
        rows_update<1>(nb, kb, a + static_cast<long>(i) * lda + k0, lda, pack, nb,
                       c + static_cast<long>(i) * ldc + j0, ldc);
    }
  }
}

FLASHNCE_CLONES
void builtin_gemm_ab_accumulate(int m, int n, int k, const float* a, int lda, const float* b,
                                int ldb, float* c, int ldc) {
  for (int j0 = 0; j0 < n; j0 += kPackWidth) { // a C row slice of <= 1 KB stays in L1
    const int nb = std::min(kPackWidth, n - j0);
    int i = 0;
    for (; i + 4 <= m; i += 4)
      rows_update<4>(nb, k, a + static_cast<long>(i) * lda, lda, b + j0, ldb,
                     c + static_cast<long>(i) * ldc + j0, ldc);
    for (; i < m; ++i)
      rows_update<1>(nb, k, a + static_cast<long>(i) * lda, lda, b + j0, ldb,
                     c + static_cast<long>(i) * ldc + j0, ldc);
  }
}

FLASHNCE_CLONES
void builtin_gemm_atb_accumulate(int m, int n, int k, const float* a, int lda, const float* b,
                                 int ldb, float* c, int ldc) {
  // C row i += Σ_q A[q][i] . B row q: the same broadcast-times-row update, A read down a column.
  for (int j0 = 0; j0 < n; j0 += kPackWidth) {
    const int nb = std::min(kPackWidth, n - j0);
    for (int i = 0; i < m; ++i) {
      float* __restrict crow = c + static_cast<long>(i) * ldc + j0;
      for (int q = 0; q < k; ++q) {
        const float av = a[static_cast<long>(q) * lda + i];
        const float* __restrict brow = b + static_cast<long>(q) * ldb + j0;
        for (int j = 0; j < nb; ++j)
          crow[j] += av * brow[j];
      }
    }
  }
}

void gemm_abt(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c,
              int ldc) {
#if defined(FLASHNCE_HAVE_BLAS)
  cblas_sgemm(101, 111, 112, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
#else
  builtin_gemm_abt(m, n, k, a, lda, b, ldb, c, ldc);
#endif
}

void gemm_ab_accumulate(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                        float* c, int ldc) {
#if defined(FLASHNCE_HAVE_BLAS)
  cblas_sgemm(101, 111, 111, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
#else
  builtin_gemm_ab_accumulate(m, n, k, a, lda, b, ldb, c, ldc);
#endif
}

void gemm_atb_accumulate(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                         float* c, int ldc) {
#if defined(FLASHNCE_HAVE_BLAS)
  cblas_sgemm(101, 112, 111, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
#else
  builtin_gemm_atb_accumulate(m, n, k, a, lda, b, ldb, c, ldc);
#endif
}

const char* gemm_library() {
#if defined(FLASHNCE_HAVE_BLAS)
  return FLASHNCE_BLAS_NAME;
#else
  return "built-in";
#endif
}

} // namespace host_backend
} // namespace flashnce
