// FlashNCE C++ layer (C++17, header-only over the C API of flashnce.h): exceptions, loss presets,
// RAII buffers in a backend's memory, and a small Loss helper that owns the saved LSEs and the
// workspace.  Everything here can throw flashnce::Error; the C API underneath never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "flashnce/flashnce.h"

namespace flashnce {

// ---- Errors -------------------------------------------------------------------------------
// A failed call: its status and the library's message ("n must be >= 1, got 0").
class Error : public std::runtime_error {
public:
  Error(fnceStatus_t status, const std::string& message)
      : std::runtime_error(std::string(fnceGetStatusString(status)) + ": " + message),
        status_(status), message_(message) {}
  fnceStatus_t status() const noexcept { return status_; }
  const std::string& message() const noexcept { return message_; }

private:
  fnceStatus_t status_;
  std::string message_;
};

// Throws Error(status, fnceGetLastErrorMessage()) unless status is FNCE_SUCCESS.
inline void check(fnceStatus_t status) {
  if (status != FNCE_SUCCESS)
    throw Error(status, fnceGetLastErrorMessage());
}

// ---- Presets (DESIGN.md §1).  Each returns initialised params; adjust any field afterwards. ----
namespace detail {
inline fnceLossParams base(fnceBackend_t backend, fnceDataType_t dtype, int64_t n, int64_t m,
                           int64_t d, const void* a, const void* b, const float* logit_scale) {
  fnceLossParams p;
  check(fnceLossParamsInit(&p));
  p.backend = backend;
  p.dtype = dtype;
  p.n = n;
  p.m = m;
  p.d = d;
  p.a = a;
  p.b = b;
  p.logit_scale = logit_scale;
  return p;
}
} // namespace detail

// InfoNCE (CPC): row i of a against all m rows of b, positive b_i (n <= m), dot-product critic.
inline fnceLossParams infonce(int64_t n, int64_t m, int64_t d, const void* a, const void* b,
                              const float* logit_scale, fnceBackend_t backend = FNCE_BACKEND_CUDA,
                              fnceDataType_t dtype = FNCE_F32) {
  return detail::base(backend, dtype, n, m, d, a, b, logit_scale); // DOT, DIAGONAL, ALL, ROWS, MEAN
}

// CLIP: n image/text pairs, symmetric (image->text and text->image) cross-entropy, cosine
// similarity (no need to normalise the embeddings first), logit_scale = 1/temperature.
inline fnceLossParams clip(int64_t n, int64_t d, const void* image, const void* text,
                           const float* logit_scale, fnceBackend_t backend = FNCE_BACKEND_CUDA,
                           fnceDataType_t dtype = FNCE_F32) {
  fnceLossParams p = detail::base(backend, dtype, n, n, d, image, text, logit_scale);
  p.similarity = FNCE_SIM_COSINE;
  p.direction = FNCE_DIRECTION_SYMMETRIC;
  return p;
}

// SimCLR's NT-Xent: `views` stacks the two views [x; x'] (n = 2 * batch rows); self mode, the
// positive of row i is row (i + n/2) mod n, self-similarity excluded, cosine similarity.
inline fnceLossParams nt_xent(int64_t n, int64_t d, const void* views, const float* logit_scale,
                              fnceBackend_t backend = FNCE_BACKEND_CUDA,
                              fnceDataType_t dtype = FNCE_F32) {
  fnceLossParams p = detail::base(backend, dtype, n, n, d, views, nullptr, logit_scale);
  p.similarity = FNCE_SIM_COSINE;
  p.positives = FNCE_POSITIVES_VIEW_PAIRS;
  p.exclude_self = 1;
  return p;
}

// Supervised contrastive (SupCon, "L_out"): self mode, positives = same label, self excluded,
// cosine similarity.  `labels`: n entries in the backend's memory.
inline fnceLossParams supcon(int64_t n, int64_t d, const void* features, const int64_t* labels,
                             const float* logit_scale, fnceBackend_t backend = FNCE_BACKEND_CUDA,
                             fnceDataType_t dtype = FNCE_F32) {
  fnceLossParams p = detail::base(backend, dtype, n, n, d, features, nullptr, logit_scale);
  p.similarity = FNCE_SIM_COSINE;
  p.positives = FNCE_POSITIVES_LABELS;
  p.labels_a = labels;
  p.exclude_self = 1;
  return p;
}

// VAE-prior form ("InfoNCE is a variational autoencoder"): normaliser = the negatives only, with
// the log|Z(i)| constant, so -loss estimates the ELBO term f(z,z') - log E_q e^{f(z,z'')}.
// Gaussian critic by default: -||z_i - z'_j||^2 with logit_scale = 1/(2 sigma^2).
inline fnceLossParams vae_prior(int64_t n, int64_t m, int64_t d, const void* z, const void* z_prior,
                                const float* logit_scale, fnceBackend_t backend = FNCE_BACKEND_CUDA,
                                fnceDataType_t dtype = FNCE_F32) {
  fnceLossParams p = detail::base(backend, dtype, n, m, d, z, z_prior, logit_scale);
  p.similarity = FNCE_SIM_NEG_SQ_DIST;
  p.normalizer = FNCE_NORMALIZER_NEGATIVES;
  return p;
}

// MoCo: n queries against b = [n positive keys; `queue` negatives] (m = n + queue rows, one
// stride), positive of query i = key i, cosine similarity.
inline fnceLossParams moco(int64_t n, int64_t queue, int64_t d, const void* queries,
                           const void* keys_then_queue, const float* logit_scale,
                           fnceBackend_t backend = FNCE_BACKEND_CUDA,
                           fnceDataType_t dtype = FNCE_F32) {
  fnceLossParams p =
      detail::base(backend, dtype, n, n + queue, d, queries, keys_then_queue, logit_scale);
  p.similarity = FNCE_SIM_COSINE;
  return p;
}

// ---- Buffer: `count` elements of T in a backend's memory (fnceMalloc/fnceFree), move-only. ----
// upload/download copy synchronously between host and backend memory.
template <typename T> class Buffer {
public:
  Buffer() = default;
  Buffer(fnceBackend_t backend, size_t count) : backend_(backend), count_(count) {
    if (count_ > static_cast<size_t>(-1) / sizeof(T))
      throw Error(FNCE_ERROR_INVALID_VALUE,
                  "Buffer: count * sizeof(T) must fit in size_t, got count = " +
                      std::to_string(count_));
    if (count_ > 0) {
      void* p = nullptr;
      check(fnceMalloc(backend_, &p, count_ * sizeof(T)));
      data_ = static_cast<T*>(p);
    }
  }
  Buffer(fnceBackend_t backend, const std::vector<T>& host) : Buffer(backend, host.size()) {
    upload(host);
  }
  Buffer(fnceBackend_t backend, std::initializer_list<T> host)
      : Buffer(backend, std::vector<T>(host)) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer(std::move(o)).swap(*this);
    return *this;
  }
  ~Buffer() {
    if (data_ != nullptr)
      (void)fnceFree(backend_, data_); // destructors never throw
  }

  T* data() const noexcept { return data_; }
  size_t size() const noexcept { return count_; }
  fnceBackend_t backend() const noexcept { return backend_; }

  void upload(const T* host, size_t count) {
    if (count > count_)
      throw Error(FNCE_ERROR_INVALID_VALUE,
                  "Buffer::upload: count must be <= size() = " + std::to_string(count_) + ", got " +
                      std::to_string(count));
    check(fnceMemcpy(backend_, data_, host, count * sizeof(T), FNCE_COPY_HOST_TO_BACKEND));
  }
  void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
  void download(T* host, size_t count) const {
    if (count > count_)
      throw Error(FNCE_ERROR_INVALID_VALUE,
                  "Buffer::download: count must be <= size() = " + std::to_string(count_) +
                      ", got " + std::to_string(count));
    check(fnceMemcpy(backend_, host, data_, count * sizeof(T), FNCE_COPY_BACKEND_TO_HOST));
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    download(host.data(), count_);
    return host;
  }

private:
  void swap(Buffer& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
  }
  fnceBackend_t backend_ = FNCE_BACKEND_CPU;
  T* data_ = nullptr;
  size_t count_ = 0;
};

// ---- Loss: one problem's forward and backward, owning the saved LSEs and the workspace. ----
// All pointers are in params.backend's memory; calls are asynchronous on `stream` (CUDA).
class Loss {
public:
  explicit Loss(const fnceLossParams& params) : p_(params) {
    size_t fwd = 0, bwd = 0;
    check(fnceForwardWorkspaceSize(&p_, &fwd)); // validates p_ before anything is allocated
    check(fnceBackwardWorkspaceSize(&p_, &bwd));
    const int64_t m = p_.b == nullptr ? p_.n : p_.m;
    row_lse_ = Buffer<float>(p_.backend, static_cast<size_t>(p_.n));
    if (p_.direction == FNCE_DIRECTION_SYMMETRIC)
      col_lse_ = Buffer<float>(p_.backend, static_cast<size_t>(m));
    workspace_ = Buffer<unsigned char>(p_.backend, fwd > bwd ? fwd : bwd);
  }

  const fnceLossParams& params() const noexcept { return p_; }
  // Floats in `loss` / `grad_loss`: 1, or n (n + m for SYMMETRIC) with REDUCTION_NONE.
  size_t loss_count() const noexcept {
    if (p_.reduction != FNCE_REDUCTION_NONE)
      return 1;
    return static_cast<size_t>(p_.direction == FNCE_DIRECTION_SYMMETRIC ? p_.n + p_.m : p_.n);
  }

  // Writes the loss and keeps the row (and column) LSE for backward.
  void forward(float* loss, void* stream = nullptr) {
    check(fnceForward(&p_, loss, row_lse_.data(), col_lse_.data(), workspace_.data(),
                      workspace_.size(), stream));
  }
  // Gradients of sum(grad_loss * loss) from the last forward; any output may be NULL.
  void backward(const float* grad_loss, void* grad_a, void* grad_b = nullptr,
                float* grad_logit_scale = nullptr, void* stream = nullptr) {
    check(fnceBackward(&p_, row_lse_.data(), col_lse_.data(), grad_loss, grad_a, grad_b,
                       grad_logit_scale, workspace_.data(), workspace_.size(), stream));
  }

private:
  fnceLossParams p_;
  Buffer<float> row_lse_, col_lse_;
  Buffer<unsigned char> workspace_;
};

} // namespace flashnce
