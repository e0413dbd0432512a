// The CUDA backend of a build without nvcc: nothing runs, every call says why.
// (host/CMakeLists.txt compiles this file instead of host/cuda/*.cpp and kernels/ in that case.)
#include "host/backend.h"
#include "host/device_status.h"
#include "host/error.h"

namespace flashnce {
namespace cuda_backend {
namespace {
fnceStatus_t unavailable() {
  return fail(FNCE_ERROR_NOT_SUPPORTED,
              "FlashNCE was built without CUDA (nvcc not found at configure time); use "
              "backend = FNCE_BACKEND_CPU or rebuild with nvcc on PATH");
}
} // namespace

bool available() {
  return false;
}
fnceStatus_t check_device() {
  return unavailable();
}
fnceStatus_t device_name(char*, size_t) {
  return unavailable();
}
fnceStatus_t malloc(void**, size_t) {
  return unavailable();
}
fnceStatus_t free(void*) {
  return unavailable();
}
fnceStatus_t memcpy(void*, const void*, size_t, fnceCopyKind_t) {
  return unavailable();
}
fnceStatus_t synchronize(void*) {
  return unavailable();
}

fnceStatus_t forward_workspace_size(const Problem&, size_t*) {
  return unavailable();
}
fnceStatus_t forward(const Problem&, float*, float*, float*, void*, size_t, void*) {
  return unavailable();
}
fnceStatus_t backward_workspace_size(const Problem&, size_t*) {
  return unavailable();
}
fnceStatus_t backward(const Problem&, const float*, const float*, const float*, void*, void*,
                      float*, void*, size_t, void*) {
  return unavailable();
}

} // namespace cuda_backend
} // namespace flashnce
