// cuBLAS modelled as a host GEMM, for the naive baseline under the CPU SIMT emulator (tests/emu):
// just the handful of declarations naive_loss.cu uses, with cuBLAS's names and meaning
// (column-major, op(X) = X or Xᵀ, f32 accumulation, host alpha / beta).  Emulated "device"
// memory is host memory and emulated launches complete in order, so the GEMM runs at once.
// FAST_TF32 computes in f32 here (the tests do not ask for TF32).
#pragma once

#if !defined(CUDA_EMU)
#error "cublas_emu.h is only for the emulator build; nvcc builds use the real cuBLAS"
#endif

#include <cstdint>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
struct cublasEmuContext {
  cudaStream_t stream = nullptr;
};
typedef cublasEmuContext* cublasHandle_t;

inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cublasEmuContext;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}

namespace cublas_emu {

inline float load(const void* base, int64_t idx, cudaDataType_t t) {
  switch (t) {
  case CUDA_R_32F:
    return static_cast<const float*>(base)[idx];
  case CUDA_R_16F:
    return __half2float(static_cast<const __half*>(base)[idx]);
  default:
    return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[idx]);
  }
}

inline void store(void* base, int64_t idx, cudaDataType_t t, float v) {
  switch (t) {
  case CUDA_R_32F:
    static_cast<float*>(base)[idx] = v;
    break;
  case CUDA_R_16F:
    static_cast<__half*>(base)[idx] = __float2half_rn(v);
    break;
  default:
    static_cast<__nv_bfloat16*>(base)[idx] = __float2bfloat16_rn(v);
    break;
  }
}

inline bool supported(cudaDataType_t t) {
  return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF;
}

} // namespace cublas_emu

// C = alpha·op(A)·op(B) + beta·C, all column-major; op(A) is m×k, op(B) is k×n, C is m×n.
inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t transa,
                                   cublasOperation_t transb, int m, int n, int k, const void* alpha,
                                   const void* A, cudaDataType_t Atype, int lda, const void* B,
                                   cudaDataType_t Btype, int ldb, const void* beta, void* C,
                                   cudaDataType_t Ctype, int ldc, cublasComputeType_t compute,
                                   cublasGemmAlgo_t) {
  using namespace cublas_emu;
  if (!h || m < 0 || n < 0 || k < 0 || !supported(Atype) || !supported(Btype) ||
      !supported(Ctype) || Atype != Btype ||
      (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32) ||
      lda < (transa == CUBLAS_OP_N ? m : k) || ldb < (transb == CUBLAS_OP_N ? k : n) || ldc < m)
    return CUBLAS_STATUS_INVALID_VALUE;
  // Work queued before on the stream must have finished (emulated launches already have).
  cudaStreamSynchronize(h->stream);
  const float a_s = *static_cast<const float*>(alpha), b_s = *static_cast<const float*>(beta);
  std::vector<float> col(k);
  for (int j = 0; j < n; ++j) {
    for (int p = 0; p < k; ++p) // column j of op(B)
      col[p] = load(B, transb == CUBLAS_OP_N ? int64_t(j) * ldb + p : int64_t(p) * ldb + j, Btype);
    for (int i = 0; i < m; ++i) {
      float acc = 0.f;
      for (int p = 0; p < k; ++p)
        acc += load(A, transa == CUBLAS_OP_N ? int64_t(p) * lda + i : int64_t(i) * lda + p, Atype) *
               col[p];
      const int64_t c = int64_t(j) * ldc + i;
      // beta == 0: C is not read (it may hold NaN garbage), as in cuBLAS.
      store(C, c, Ctype, b_s == 0.f ? a_s * acc : a_s * acc + b_s * load(C, c, Ctype));
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
