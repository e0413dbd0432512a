// Host side of the naive baseline (see naive_loss.h): buffers, the three cuBLAS GEMMs and the
// launches of naive_loss_kernel.cuh.
#include "bench/naive/naive_loss.h"

#include <cstdarg>
#include <cstdio>
#include <utility>

#include <cuda_runtime.h>
#if defined(CUDA_EMU)
#include "bench/naive/cublas_emu.h" // under the CPU SIMT emulator: cuBLAS as a host GEMM
#else
#include <cublas_v2.h>
#endif

#include "bench/naive/naive_loss_kernel.cuh"

namespace flashnce::naive {
namespace {

// Enough threads in flight for the column pass to fill an H100/H200 (132 SMs × 2048 threads).
constexpr int64_t kColumnPassThreads = int64_t(1) << 18;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Row chunks of the column pass: enough blocks for small m, one chunk for huge m.
int64_t column_chunks(int64_t n, int64_t m) {
  int64_t chunks = ceil_div(kColumnPassThreads, m);
  const int64_t max_chunks = ceil_div(n, 32); // at least 32 rows per chunk
  if (chunks > max_chunks)
    chunks = max_chunks;
  if (chunks > 65535)
    chunks = 65535; // gridDim.y limit
  if (chunks < 1)
    chunks = 1;
  return ceil_div(n, ceil_div(n, chunks)); // no empty chunk
}

size_t dtype_bytes(fnceDataType_t t) {
  return t == FNCE_F32 ? 4 : 2;
}

cudaDataType_t cuda_type(fnceDataType_t t) {
  return t == FNCE_F32 ? CUDA_R_32F : (t == FNCE_F16 ? CUDA_R_16F : CUDA_R_16BF);
}

// Scratch layout: rows (lse, loss, grad-scale partial: f32; npos, nz: i64), columns (lse, loss;
// npos, nz), column partials (max, sum, pos_sum; npos, nz) per chunk, 2 valid counts.
size_t scratch_bytes(int64_t n, int64_t m) {
  const int64_t chunks = column_chunks(n, m);
  return size_t(n) * (3 * 4 + 2 * 8) + size_t(m) * (2 * 4 + 2 * 8) +
         size_t(chunks) * size_t(m) * (3 * 4 + 2 * 8) + 2 * 8;
}

template <typename... Params, typename... Args>
cudaError_t launch(void (*kernel)(Params...), int64_t blocks, int threads, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(blocks), 1, 1);
  cfg.blockDim = dim3(threads, 1, 1);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cfg.attrs = nullptr;
  cfg.numAttrs = 0;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

} // namespace

Footprint footprint(int64_t n, int64_t m, fnceDataType_t dtype, bool with_backward) {
  Footprint f;
  f.similarity_bytes = size_t(n) * size_t(m) * 4;
  f.dlogits_bytes = with_backward ? size_t(n) * size_t(m) * dtype_bytes(dtype) : 0;
  f.scratch_bytes = scratch_bytes(n, m);
  return f;
}

struct NaiveLoss::Impl {
  cublasHandle_t handle = nullptr;
  float* sim = nullptr;
  size_t sim_cap = 0; // bytes
  void* dlogits = nullptr;
  size_t dlogits_cap = 0;
  char* scratch = nullptr;
  size_t scratch_cap = 0;
  float* cos_buf = nullptr; // COSINE only: normalised rows, their gradients, the norms (f32)
  size_t cos_cap = 0;
  float *a_hat = nullptr, *b_hat = nullptr, *ghat_a = nullptr, *ghat_b = nullptr;
  float *norm_a = nullptr, *norm_b = nullptr;
  // Carved from scratch for the last forward's shape.
  LineStats rows{}, cols{};
  float* grad_scale_rows = nullptr;
  ColumnPartials partials{};
  int64_t* valid_counts = nullptr;
  int64_t chunks = 1;
  // What the last forward ran on (backward checks it).
  int64_t fwd_n = -1, fwd_m = -1;
};

NaiveLoss::NaiveLoss() : impl_(new Impl) {}

NaiveLoss::~NaiveLoss() {
  cudaFree(impl_->sim);
  cudaFree(impl_->dlogits);
  cudaFree(impl_->scratch);
  cudaFree(impl_->cos_buf);
  if (impl_->handle)
    cublasDestroy(impl_->handle);
  delete impl_;
}

size_t NaiveLoss::allocated_bytes() const {
  return impl_->sim_cap + impl_->dlogits_cap + impl_->scratch_cap + impl_->cos_cap;
}

namespace {

fnceStatus_t set_error(std::string& error, fnceStatus_t status, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  error = buf;
  return status;
}

fnceStatus_t grow(void** ptr, size_t* cap, size_t bytes, std::string& error, const char* what) {
  if (bytes <= *cap)
    return FNCE_SUCCESS;
  cudaFree(*ptr);
  *ptr = nullptr;
  *cap = 0;
  const cudaError_t e = cudaMalloc(ptr, bytes);
  if (e != cudaSuccess) {
    *ptr = nullptr;
    return set_error(error, FNCE_ERROR_CUDA, "naive: cudaMalloc(%s, %zu bytes) failed: %s", what,
                     bytes, cudaGetErrorString(e));
  }
  *cap = bytes;
  return FNCE_SUCCESS;
}

// The user's params with self mode resolved, as the library's validate() does.
fnceLossParams normalise(const fnceLossParams& in, bool* self_mode) {
  fnceLossParams p = in;
  if (p.lda == 0)
    p.lda = p.d;
  *self_mode = p.b == nullptr;
  if (*self_mode) {
    p.b = p.a;
    p.ldb = p.lda;
    p.m = p.n;
    p.labels_b = p.labels_a;
    p.exclude_self = 1;
  } else if (p.ldb == 0) {
    p.ldb = p.d;
  }
  p.exclude_self = p.exclude_self ? 1 : 0;
  return p;
}

fnceStatus_t check(const fnceLossParams& p, std::string& error) {
  if (p.backend != FNCE_BACKEND_CUDA)
    return set_error(error, FNCE_ERROR_INVALID_VALUE, "naive: backend must be CUDA, got %d",
                     (int)p.backend);
  if (p.similarity != FNCE_SIM_DOT && p.similarity != FNCE_SIM_COSINE)
    return set_error(error, FNCE_ERROR_NOT_SUPPORTED,
                     "naive: only the DOT and COSINE similarities are implemented, got %d",
                     (int)p.similarity);
  if (p.n < 1 || p.m < 1 || p.d < 1)
    return set_error(error, FNCE_ERROR_INVALID_VALUE,
                     "naive: n, m, d must be >= 1, got %lld, "
                     "%lld, %lld",
                     (long long)p.n, (long long)p.m, (long long)p.d);
  if (p.n > INT32_MAX || p.m > INT32_MAX || p.d > INT32_MAX || p.lda > INT32_MAX ||
      p.ldb > INT32_MAX)
    return set_error(error, FNCE_ERROR_NOT_SUPPORTED, "naive: cuBLAS dimensions must be < 2^31");
  if (!p.a || !p.logit_scale)
    return set_error(error, FNCE_ERROR_INVALID_VALUE, "naive: a and logit_scale are required");
  if (p.positives == FNCE_POSITIVES_TARGETS && !p.targets)
    return set_error(error, FNCE_ERROR_INVALID_VALUE, "naive: targets is NULL");
  if (p.positives == FNCE_POSITIVES_LABELS && (!p.labels_a || !p.labels_b))
    return set_error(error, FNCE_ERROR_INVALID_VALUE, "naive: labels are NULL");
  return FNCE_SUCCESS;
}

LossParams kernel_params(const fnceLossParams& p, const float* sim) {
  LossParams k{};
  k.sim = sim;
  k.n = p.n;
  k.m = p.m;
  k.logit_scale = p.logit_scale;
  k.positives = p.positives;
  k.targets = p.targets;
  k.labels_a = p.labels_a;
  k.labels_b = p.labels_b;
  k.exclude_self = p.exclude_self;
  k.negatives = p.normalizer == FNCE_NORMALIZER_NEGATIVES;
  k.symmetric = p.direction == FNCE_DIRECTION_SYMMETRIC;
  k.reduction = p.reduction;
  return k;
}

// C (column-major M×N, ldc) = op(X)·op(Y), f32 accumulation.
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t opx, cublasOperation_t opy, int64_t M,
                    int64_t N, int64_t K, const void* x, int64_t ldx, const void* y, int64_t ldy,
                    float beta, void* c, cudaDataType_t ctype, int64_t ldc, fnceDataType_t dtype,
                    bool tf32) {
  const float alpha = 1.f;
  const cublasComputeType_t compute =
      dtype == FNCE_F32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  return cublasGemmEx(h, opx, opy, (int)M, (int)N, (int)K, &alpha, x, cuda_type(dtype), (int)ldx, y,
                      cuda_type(dtype), (int)ldy, &beta, c, ctype, (int)ldc, compute,
                      CUBLAS_GEMM_DEFAULT);
}

cudaError_t normalise_rows(const void* x, int64_t ld, int64_t rows, int64_t d, fnceDataType_t t,
                           float* xhat, float* norms, cudaStream_t stream) {
  switch (t) {
  case FNCE_F32:
    return launch(normalise_rows_kernel<float>, rows, kBlockThreads, stream, (const float*)x, ld, d,
                  xhat, norms);
  case FNCE_F16:
    return launch(normalise_rows_kernel<__half>, rows, kBlockThreads, stream, (const __half*)x, ld,
                  d, xhat, norms);
  default:
    return launch(normalise_rows_kernel<__nv_bfloat16>, rows, kBlockThreads, stream,
                  (const __nv_bfloat16*)x, ld, d, xhat, norms);
  }
}

cudaError_t normalise_rows_backward(const float* ghat, const float* xhat, const float* norms,
                                    int64_t rows, int64_t d, fnceDataType_t t, void* grad,
                                    cudaStream_t stream) {
  switch (t) {
  case FNCE_F32:
    return launch(normalise_rows_backward_kernel<float>, rows, kBlockThreads, stream, ghat, xhat,
                  norms, d, (float*)grad);
  case FNCE_F16:
    return launch(normalise_rows_backward_kernel<__half>, rows, kBlockThreads, stream, ghat, xhat,
                  norms, d, (__half*)grad);
  default:
    return launch(normalise_rows_backward_kernel<__nv_bfloat16>, rows, kBlockThreads, stream, ghat,
                  xhat, norms, d, (__nv_bfloat16*)grad);
  }
}

} // namespace

fnceStatus_t NaiveLoss::reserve(int64_t n, int64_t m, fnceDataType_t dtype, bool with_backward) {
  Impl& s = *impl_;
  if (!s.handle) {
    const cublasStatus_t st = cublasCreate(&s.handle);
    if (st != CUBLAS_STATUS_SUCCESS) {
      s.handle = nullptr;
      return set_error(error_, FNCE_ERROR_CUDA, "naive: cublasCreate failed (%d)", (int)st);
    }
  }
  const Footprint f = footprint(n, m, dtype, with_backward);
  fnceStatus_t st =
      grow(reinterpret_cast<void**>(&s.sim), &s.sim_cap, f.similarity_bytes, error_, "similarity");
  if (st == FNCE_SUCCESS && with_backward)
    st = grow(&s.dlogits, &s.dlogits_cap, f.dlogits_bytes, error_, "dlogits");
  if (st == FNCE_SUCCESS)
    st = grow(reinterpret_cast<void**>(&s.scratch), &s.scratch_cap, f.scratch_bytes, error_,
              "scratch");
  return st;
}

fnceStatus_t NaiveLoss::forward(const fnceLossParams& user, float* loss, float* row_lse,
                                float* col_lse, void* stream_ptr) {
  bool self_mode = false;
  const fnceLossParams p = normalise(user, &self_mode);
  fnceStatus_t st = check(p, error_);
  if (st != FNCE_SUCCESS)
    return st;
  if (!loss)
    return set_error(error_, FNCE_ERROR_INVALID_VALUE, "naive: loss is NULL");
  const bool cosine = p.similarity == FNCE_SIM_COSINE;
  st = reserve(p.n, p.m, cosine ? FNCE_F32 : p.dtype, false); // COSINE: f32 dlogits
  if (st == FNCE_SUCCESS && cosine)
    st = grow(reinterpret_cast<void**>(&impl_->cos_buf), &impl_->cos_cap,
              4 * (size_t(p.d) * 2 * size_t(p.n + p.m) + size_t(p.n + p.m)), error_, "cosine");
  if (st != FNCE_SUCCESS)
    return st;
  Impl& s = *impl_;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

  // Carve the scratch for this shape.
  s.chunks = column_chunks(p.n, p.m);
  char* q = s.scratch;
  auto take = [&q](size_t bytes) {
    char* r = q;
    q += bytes;
    return r;
  };
  // 8-byte arrays first, so that every array stays aligned.
  s.rows.npos = reinterpret_cast<int64_t*>(take(8 * p.n));
  s.rows.nz = reinterpret_cast<int64_t*>(take(8 * p.n));
  s.cols.npos = reinterpret_cast<int64_t*>(take(8 * p.m));
  s.cols.nz = reinterpret_cast<int64_t*>(take(8 * p.m));
  s.partials.npos = reinterpret_cast<int64_t*>(take(8 * s.chunks * p.m));
  s.partials.nz = reinterpret_cast<int64_t*>(take(8 * s.chunks * p.m));
  s.valid_counts = reinterpret_cast<int64_t*>(take(16));
  s.rows.lse = reinterpret_cast<float*>(take(4 * p.n));
  s.rows.loss = reinterpret_cast<float*>(take(4 * p.n));
  s.grad_scale_rows = reinterpret_cast<float*>(take(4 * p.n));
  s.cols.lse = reinterpret_cast<float*>(take(4 * p.m));
  s.cols.loss = reinterpret_cast<float*>(take(4 * p.m));
  s.partials.max = reinterpret_cast<float*>(take(4 * s.chunks * p.m));
  s.partials.sum = reinterpret_cast<float*>(take(4 * s.chunks * p.m));
  s.partials.pos_sum = reinterpret_cast<float*>(take(4 * s.chunks * p.m));

  if (cosine) { // normalised f32 copies first, as users write it (F.normalize, then the GEMM)
    float* c = s.cos_buf;
    s.a_hat = c;
    c += p.n * p.d;
    s.ghat_a = c;
    c += p.n * p.d;
    s.b_hat = self_mode ? s.a_hat : c;
    c += p.m * p.d;
    s.ghat_b = c;
    c += p.m * p.d;
    s.norm_a = c;
    c += p.n;
    s.norm_b = self_mode ? s.norm_a : c;
    cudaError_t e = normalise_rows(p.a, p.lda, p.n, p.d, p.dtype, s.a_hat, s.norm_a, stream);
    if (e == cudaSuccess && !self_mode)
      e = normalise_rows(p.b, p.ldb, p.m, p.d, p.dtype, s.b_hat, s.norm_b, stream);
    if (e != cudaSuccess)
      return set_error(error_, FNCE_ERROR_CUDA, "naive: normalisation launch failed: %s",
                       cudaGetErrorString(e));
  }
  cublasSetStream(s.handle, stream);
  // sim (row-major n×m) = A·Bᵀ, i.e. column-major m×n = (B as d×m)ᵀ · (A as d×n).
  const cublasStatus_t cs =
      cosine ? gemm(s.handle, CUBLAS_OP_T, CUBLAS_OP_N, p.m, p.n, p.d, s.b_hat, p.d, s.a_hat, p.d,
                    0.f, s.sim, CUDA_R_32F, p.m, FNCE_F32, false)
             : gemm(s.handle, CUBLAS_OP_T, CUBLAS_OP_N, p.m, p.n, p.d, p.b, p.ldb, p.a, p.lda, 0.f,
                    s.sim, CUDA_R_32F, p.m, p.dtype, p.allow_tf32);
  if (cs != CUBLAS_STATUS_SUCCESS)
    return set_error(error_, FNCE_ERROR_CUDA, "naive: forward cublasGemmEx failed (%d)", (int)cs);

  const LossParams k = kernel_params(p, s.sim);
  const bool symmetric = p.direction == FNCE_DIRECTION_SYMMETRIC;
  cudaError_t e = launch(row_stats_kernel, p.n, kBlockThreads, stream, k, s.rows, row_lse);
  if (e == cudaSuccess && symmetric) {
    const int64_t rows_per_chunk = ceil_div(p.n, s.chunks);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)ceil_div(p.m, kBlockThreads), (unsigned)s.chunks, 1);
    cfg.blockDim = dim3(kBlockThreads, 1, 1);
    cfg.stream = stream;
    e = cudaLaunchKernelEx(&cfg, col_partial_kernel, k, s.partials, rows_per_chunk);
    if (e == cudaSuccess)
      e = launch(col_combine_kernel, ceil_div(p.m, kBlockThreads), kBlockThreads, stream, k,
                 s.partials, s.chunks, s.cols, col_lse);
  }
  if (e == cudaSuccess) // the valid counts (for MEAN's backward) and the reduced loss
    e = launch(reduce_loss_kernel, 1, kBlockThreads, stream, k, s.rows, s.cols,
               p.reduction == FNCE_REDUCTION_NONE ? (float*)nullptr : loss, s.valid_counts);
  if (e == cudaSuccess && p.reduction == FNCE_REDUCTION_NONE) {
    const int64_t mcols = symmetric ? p.m : 0;
    e = launch(copy_losses_kernel, ceil_div(p.n + mcols, kBlockThreads), kBlockThreads, stream,
               (const float*)s.rows.loss, (const float*)s.cols.loss, p.n, mcols, loss);
  }
  if (e != cudaSuccess)
    return set_error(error_, FNCE_ERROR_CUDA, "naive: forward launch failed: %s",
                     cudaGetErrorString(e));
  s.fwd_n = p.n;
  s.fwd_m = p.m;
  return FNCE_SUCCESS;
}

fnceStatus_t NaiveLoss::backward(const fnceLossParams& user, const float* row_lse,
                                 const float* col_lse, const float* grad_loss, void* grad_a,
                                 void* grad_b, float* grad_logit_scale, void* stream_ptr) {
  bool self_mode = false;
  const fnceLossParams p = normalise(user, &self_mode);
  fnceStatus_t st = check(p, error_);
  if (st != FNCE_SUCCESS)
    return st;
  Impl& s = *impl_;
  if (s.fwd_n != p.n || s.fwd_m != p.m)
    return set_error(error_, FNCE_ERROR_INVALID_VALUE,
                     "naive: backward must follow forward on the same shape");
  if (!grad_loss)
    return set_error(error_, FNCE_ERROR_INVALID_VALUE, "naive: grad_loss is NULL");
  if (self_mode && grad_b)
    return set_error(error_, FNCE_ERROR_INVALID_VALUE, "naive: grad_b must be NULL in self mode");
  const bool cosine = p.similarity == FNCE_SIM_COSINE;
  st = reserve(p.n, p.m, cosine ? FNCE_F32 : p.dtype, true);
  if (st != FNCE_SUCCESS)
    return st;
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

  const LossParams k = kernel_params(p, s.sim);
  BackwardParams b{};
  b.row_lse = row_lse ? row_lse : s.rows.lse;
  b.col_lse = col_lse ? col_lse : s.cols.lse;
  b.row_npos = s.rows.npos;
  b.row_nz = s.rows.nz;
  b.col_npos = s.cols.npos;
  b.col_nz = s.cols.nz;
  b.valid_counts = s.valid_counts;
  b.grad_loss = grad_loss;
  b.grad_scale_rows = s.grad_scale_rows;
  cudaError_t e;
  switch (cosine ? FNCE_F32 : p.dtype) {
  case FNCE_F32:
    e = launch(dlogits_kernel<float>, p.n, kBlockThreads, stream, k, b,
               static_cast<float*>(s.dlogits));
    break;
  case FNCE_F16:
    e = launch(dlogits_kernel<__half>, p.n, kBlockThreads, stream, k, b,
               static_cast<__half*>(s.dlogits));
    break;
  default:
    e = launch(dlogits_kernel<__nv_bfloat16>, p.n, kBlockThreads, stream, k, b,
               static_cast<__nv_bfloat16*>(s.dlogits));
    break;
  }
  if (e == cudaSuccess && grad_logit_scale)
    e = launch(sum_grad_scale_kernel, 1, kBlockThreads, stream, (const float*)s.grad_scale_rows,
               p.n, grad_logit_scale);
  if (e != cudaSuccess)
    return set_error(error_, FNCE_ERROR_CUDA, "naive: backward launch failed: %s",
                     cudaGetErrorString(e));

  // dlogits D: row-major n×m = column-major m×n (ld m).  Outputs dense row-major (ld d).
  // COSINE: the same GEMMs in f32 on the normalised rows, into x̂'s gradients, then the backward
  // of the normalisation writes grad_a / grad_b.
  cublasSetStream(s.handle, stream);
  const fnceDataType_t gt = cosine ? FNCE_F32 : p.dtype;
  const cudaDataType_t ct = cuda_type(gt);
  const void* A = cosine ? (const void*)s.a_hat : p.a;
  const void* B = cosine ? (const void*)s.b_hat : p.b;
  const int64_t lda = cosine ? p.d : p.lda, ldb = cosine ? p.d : p.ldb;
  void* out_a = cosine ? (void*)s.ghat_a : grad_a;
  void* out_b = cosine ? (void*)s.ghat_b : grad_b;
  const bool tf32 = !cosine && p.allow_tf32;
  cublasStatus_t cs = CUBLAS_STATUS_SUCCESS;
  if (grad_a) // grad_a = D·B:  column-major d×n = (B as d×m) · (D as m×n)
    cs = gemm(s.handle, CUBLAS_OP_N, CUBLAS_OP_N, p.d, p.n, p.m, B, ldb, s.dlogits, p.m, 0.f, out_a,
              ct, p.d, gt, tf32);
  if (cs == CUBLAS_STATUS_SUCCESS && (grad_b || (self_mode && grad_a))) {
    // grad_b = Dᵀ·A:  column-major d×m = (A as d×n) · (D as m×n)ᵀ; self mode adds it to grad_a.
    void* out = self_mode ? out_a : out_b;
    cs = gemm(s.handle, CUBLAS_OP_N, CUBLAS_OP_T, p.d, p.m, p.n, A, lda, s.dlogits, p.m,
              self_mode ? 1.f : 0.f, out, ct, p.d, gt, tf32);
  }
  if (cs != CUBLAS_STATUS_SUCCESS)
    return set_error(error_, FNCE_ERROR_CUDA, "naive: backward cublasGemmEx failed (%d)", (int)cs);
  if (cosine) {
    if (grad_a)
      e = normalise_rows_backward(s.ghat_a, s.a_hat, s.norm_a, p.n, p.d, p.dtype, grad_a, stream);
    if (e == cudaSuccess && grad_b && !self_mode)
      e = normalise_rows_backward(s.ghat_b, s.b_hat, s.norm_b, p.m, p.d, p.dtype, grad_b, stream);
    if (e != cudaSuccess)
      return set_error(error_, FNCE_ERROR_CUDA, "naive: normalisation backward failed: %s",
                       cudaGetErrorString(e));
  }
  return FNCE_SUCCESS;
}

} // namespace flashnce::naive
