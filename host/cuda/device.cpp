// The device/memory side of the CUDA backend: is there a device, its name, and the convenience
// allocation/copy/synchronise calls of flashnce.h.  Plain CUDA runtime; compiled by the host
// compiler against real cudart (product) or, through a generated wrapper that includes
// cuda_emu.h first, against the CPU SIMT emulator (flashnce_emu).
#ifndef CUDA_EMU
#include <cuda_runtime.h>
#endif

#include <atomic>
#include <cstring>

#include "host/backend.h"
#include "host/device_status.h"
#include "host/error.h"

namespace flashnce {
namespace cuda_backend {
namespace {

fnceStatus_t cuda_failure(const char* call, cudaError_t e) {
  return fail(FNCE_ERROR_CUDA, "%s failed: %s (%s)", call, cudaGetErrorName(e),
              cudaGetErrorString(e));
}

cudaMemcpyKind to_cuda(fnceCopyKind_t kind) {
  switch (kind) {
  case FNCE_COPY_HOST_TO_BACKEND:
    return cudaMemcpyHostToDevice;
  case FNCE_COPY_BACKEND_TO_HOST:
    return cudaMemcpyDeviceToHost;
  case FNCE_COPY_BACKEND_TO_BACKEND:
    return cudaMemcpyDeviceToDevice;
  }
  return cudaMemcpyDefault; // unreachable: the API layer range-checks kind
}

// Once a device has been seen it stays (devices do not vanish from a running process), so the
// hot path pays one atomic load; until then every call asks the runtime again and says why not.
std::atomic<bool> g_device_seen{false};

} // namespace

fnceStatus_t check_device() {
  if (g_device_seen.load(std::memory_order_relaxed))
    return FNCE_SUCCESS;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    // Do not leave the failure as this thread's last CUDA error for unrelated later calls.
    (void)cudaGetLastError();
    return fail(FNCE_ERROR_CUDA, "no CUDA device: cudaGetDeviceCount returned %s (%s)",
                cudaGetErrorName(e), cudaGetErrorString(e));
  }
  if (count < 1)
    return fail(FNCE_ERROR_CUDA, "no CUDA device: cudaGetDeviceCount returned 0 devices");
  g_device_seen.store(true, std::memory_order_relaxed);
  return FNCE_SUCCESS;
}

bool available() {
  if (g_device_seen.load(std::memory_order_relaxed))
    return true;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (count > 0)
    g_device_seen.store(true, std::memory_order_relaxed);
  return count > 0;
}

fnceStatus_t device_name(char* name, size_t capacity) {
  if (fnceStatus_t s = check_device(); s != FNCE_SUCCESS)
    return s;
  int device = 0;
  if (cudaError_t e = cudaGetDevice(&device); e != cudaSuccess)
    return cuda_failure("cudaGetDevice", e);
  cudaDeviceProp prop;
  if (cudaError_t e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess)
    return cuda_failure("cudaGetDeviceProperties", e);
  const size_t len = strnlen(prop.name, sizeof prop.name);
  if (capacity < len + 1)
    return fail(FNCE_ERROR_INVALID_VALUE, "capacity must be >= %zu for the name \"%.*s\", got %zu",
                len + 1, static_cast<int>(len), prop.name, capacity);
  std::memcpy(name, prop.name, len);
  name[len] = '\0';
  return FNCE_SUCCESS;
}

fnceStatus_t malloc(void** ptr, size_t bytes) {
  if (fnceStatus_t s = check_device(); s != FNCE_SUCCESS)
    return s;
  void* q = nullptr;
  if (cudaError_t e = cudaMalloc(&q, bytes == 0 ? 1 : bytes); e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(FNCE_ERROR_CUDA, "cudaMalloc of %zu bytes failed: %s (%s)", bytes,
                cudaGetErrorName(e), cudaGetErrorString(e));
  }
  *ptr = q;
  return FNCE_SUCCESS;
}

fnceStatus_t free(void* ptr) {
  if (fnceStatus_t s = check_device(); s != FNCE_SUCCESS)
    return s;
  if (cudaError_t e = cudaFree(ptr); e != cudaSuccess)
    return cuda_failure("cudaFree", e);
  return FNCE_SUCCESS;
}

fnceStatus_t memcpy(void* dst, const void* src, size_t bytes, fnceCopyKind_t kind) {
  if (fnceStatus_t s = check_device(); s != FNCE_SUCCESS)
    return s;
  if (cudaError_t e = cudaMemcpy(dst, src, bytes, to_cuda(kind)); e != cudaSuccess)
    return cuda_failure("cudaMemcpy", e);
  return FNCE_SUCCESS;
}

fnceStatus_t synchronize(void* stream) {
  if (fnceStatus_t s = check_device(); s != FNCE_SUCCESS)
    return s;
  if (cudaError_t e = cudaStreamSynchronize(static_cast<cudaStream_t>(stream)); e != cudaSuccess)
    return cuda_failure("cudaStreamSynchronize", e);
  return FNCE_SUCCESS;
}

} // namespace cuda_backend
} // namespace flashnce
