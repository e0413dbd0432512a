// The public C entry points (include/flashnce/flashnce.h): clear the message, validate everything
// (host/validate.h), then dispatch to the CPU reference or the CUDA backend.  No exception ever
// leaves this file: each entry point catches everything and reports FNCE_ERROR_INTERNAL.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "flashnce/flashnce.h"
#include "host/backend.h"
#include "host/device_status.h"
#include "host/error.h"
#include "host/validate.h"

namespace flashnce {
namespace {

constexpr const char kCpuDeviceName[] = "CPU reference (f64)";

bool host_memory(fnceBackend_t backend) { // CPU and HOST both take host pointers
  return backend == FNCE_BACKEND_CPU || backend == FNCE_BACKEND_HOST;
}

fnceStatus_t internal_error(const char* where, const char* what) {
  return fail(FNCE_ERROR_INTERNAL, "%s: internal error: %s", where, what);
}

// Runs `body` with the per-thread message cleared, turning any exception into INTERNAL.
template <typename F> fnceStatus_t guarded(const char* where, F&& body) noexcept {
  try {
    clear_error();
    return body();
  } catch (const std::bad_alloc&) {
    return internal_error(where, "out of host memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    return internal_error(where, e.what());
  } catch (...) {
    return internal_error(where, "unknown exception");
  }
}

fnceStatus_t check_backend(const fnceBackend_t& backend) {
  const int b = raw_enum(backend); // never load an out-of-range value as the enum
  if (b != FNCE_BACKEND_CUDA && b != FNCE_BACKEND_CPU && b != FNCE_BACKEND_HOST)
    return fail(FNCE_ERROR_INVALID_VALUE,
                "backend must be FNCE_BACKEND_CUDA (0), FNCE_BACKEND_CPU (1) or FNCE_BACKEND_HOST "
                "(2), got %d",
                b);
  return FNCE_SUCCESS;
}

// The CUDA sizes depend on the device (its properties pick the tile configuration), so a missing
// device is reported here, uniformly ("no CUDA device: ..."), before the backend is asked.
// `least`: the smallest workspace a call accepts (HOST: scratch for one thread; the size queries
// return the size for every thread), else what the size queries return.
fnceStatus_t workspace_size(const Problem& pr, bool forward, size_t* bytes, bool least = false) {
  if (pr.p.backend == FNCE_BACKEND_CPU) {
    *bytes = 0; // the reference allocates nothing the caller provides
    return FNCE_SUCCESS;
  }
  if (pr.p.backend == FNCE_BACKEND_HOST) {
    const int threads = least ? 1 : 0;
    return forward ? host_backend::forward_workspace_size(pr, threads, bytes)
                   : host_backend::backward_workspace_size(pr, threads, bytes);
  }
  if (fnceStatus_t s = cuda_backend::check_device(); s != FNCE_SUCCESS)
    return s;
  return forward ? cuda_backend::forward_workspace_size(pr, bytes)
                 : cuda_backend::backward_workspace_size(pr, bytes);
}

} // namespace
} // namespace flashnce

using namespace flashnce;

extern "C" {

fnceStatus_t fnceLossParamsInit(fnceLossParams* p) {
  return guarded("fnceLossParamsInit", [&] {
    if (p == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "p must not be NULL, got NULL");
    std::memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->backend = FNCE_BACKEND_CUDA;
    p->dtype = FNCE_F32;
    p->n = p->m = p->d = 0; // the caller sets the shape; validation rejects 0
    p->lda = p->ldb = 0;    // 0 means d
    p->similarity = FNCE_SIM_DOT;
    p->positives = FNCE_POSITIVES_DIAGONAL;
    p->exclude_self = 0;
    p->normalizer = FNCE_NORMALIZER_ALL;
    p->direction = FNCE_DIRECTION_ROWS;
    p->reduction = FNCE_REDUCTION_MEAN;
    p->allow_tf32 = 0;
    return FNCE_SUCCESS;
  });
}

const char* fnceGetStatusString(fnceStatus_t s) {
  switch (raw_enum(s)) { // a C caller may pass any int
  case FNCE_SUCCESS:
    return "FNCE_SUCCESS";
  case FNCE_ERROR_INVALID_VALUE:
    return "FNCE_ERROR_INVALID_VALUE";
  case FNCE_ERROR_NOT_SUPPORTED:
    return "FNCE_ERROR_NOT_SUPPORTED";
  case FNCE_ERROR_WORKSPACE_TOO_SMALL:
    return "FNCE_ERROR_WORKSPACE_TOO_SMALL";
  case FNCE_ERROR_CUDA:
    return "FNCE_ERROR_CUDA";
  case FNCE_ERROR_INTERNAL:
    return "FNCE_ERROR_INTERNAL";
  }
  return "FNCE_UNKNOWN_STATUS";
}

const char* fnceGetLastErrorMessage(void) {
  return last_error_message();
}

fnceStatus_t fnceForwardWorkspaceSize(const fnceLossParams* p, size_t* bytes) {
  return guarded("fnceForwardWorkspaceSize", [&] {
    Problem pr;
    if (fnceStatus_t s = validate(p, &pr); s != FNCE_SUCCESS)
      return s;
    if (bytes == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "bytes must not be NULL, got NULL");
    return workspace_size(pr, /*forward=*/true, bytes);
  });
}

fnceStatus_t fnceBackwardWorkspaceSize(const fnceLossParams* p, size_t* bytes) {
  return guarded("fnceBackwardWorkspaceSize", [&] {
    Problem pr;
    if (fnceStatus_t s = validate(p, &pr); s != FNCE_SUCCESS)
      return s;
    if (bytes == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "bytes must not be NULL, got NULL");
    return workspace_size(pr, /*forward=*/false, bytes);
  });
}

fnceStatus_t fnceForward(const fnceLossParams* p, float* loss, float* row_lse, float* col_lse,
                         void* workspace, size_t workspace_bytes, void* stream) {
  return guarded("fnceForward", [&] {
    Problem pr;
    if (fnceStatus_t s = validate(p, &pr); s != FNCE_SUCCESS)
      return s;
    if (fnceStatus_t s = validate_forward_outputs(pr, loss, row_lse, col_lse); s != FNCE_SUCCESS)
      return s;
    // col_lse is an output of the symmetric loss only; for ROWS it is never written.
    if (pr.p.direction != FNCE_DIRECTION_SYMMETRIC)
      col_lse = nullptr;
    size_t needed = 0;
    if (fnceStatus_t s = workspace_size(pr, true, &needed, /*least=*/true); s != FNCE_SUCCESS)
      return s;
    if (fnceStatus_t s = validate_workspace(needed, workspace, workspace_bytes); s != FNCE_SUCCESS)
      return s;
    if (pr.p.backend == FNCE_BACKEND_CPU)
      return reference::forward(pr, loss, row_lse, col_lse);
    if (pr.p.backend == FNCE_BACKEND_HOST)
      return host_backend::forward(pr, loss, row_lse, col_lse, workspace, workspace_bytes);
    return cuda_backend::forward(pr, loss, row_lse, col_lse, workspace, workspace_bytes, stream);
  });
}

fnceStatus_t fnceBackward(const fnceLossParams* p, const float* row_lse, const float* col_lse,
                          const float* grad_loss, void* grad_a, void* grad_b,
                          float* grad_logit_scale, void* workspace, size_t workspace_bytes,
                          void* stream) {
  return guarded("fnceBackward", [&] {
    Problem pr;
    if (fnceStatus_t s = validate(p, &pr); s != FNCE_SUCCESS)
      return s;
    if (fnceStatus_t s =
            validate_backward_arguments(pr, row_lse, col_lse, grad_loss, grad_a, grad_b);
        s != FNCE_SUCCESS)
      return s;
    if (pr.p.direction != FNCE_DIRECTION_SYMMETRIC)
      col_lse = nullptr;
    size_t needed = 0;
    if (fnceStatus_t s = workspace_size(pr, false, &needed, /*least=*/true); s != FNCE_SUCCESS)
      return s;
    if (fnceStatus_t s = validate_workspace(needed, workspace, workspace_bytes); s != FNCE_SUCCESS)
      return s;
    if (pr.p.backend == FNCE_BACKEND_CPU)
      return reference::backward(pr, grad_loss, grad_a, grad_b, grad_logit_scale);
    if (pr.p.backend == FNCE_BACKEND_HOST)
      return host_backend::backward(pr, row_lse, col_lse, grad_loss, grad_a, grad_b,
                                    grad_logit_scale, workspace, workspace_bytes);
    return cuda_backend::backward(pr, row_lse, col_lse, grad_loss, grad_a, grad_b, grad_logit_scale,
                                  workspace, workspace_bytes, stream);
  });
}

int fnceBackendIsAvailable(fnceBackend_t backend) {
  try {
    const int b = raw_enum(backend);
    if (b == FNCE_BACKEND_CPU || b == FNCE_BACKEND_HOST)
      return 1;
    if (b == FNCE_BACKEND_CUDA)
      return cuda_backend::available() ? 1 : 0;
  } catch (...) {
  }
  return 0;
}

fnceStatus_t fnceGetDeviceName(fnceBackend_t backend, char* name, size_t capacity) {
  return guarded("fnceGetDeviceName", [&] {
    if (fnceStatus_t s = check_backend(backend); s != FNCE_SUCCESS)
      return s;
    if (name == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "name must not be NULL, got NULL");
    if (capacity == 0)
      return fail(FNCE_ERROR_INVALID_VALUE, "capacity must be >= 1, got 0");
    if (backend == FNCE_BACKEND_CUDA)
      return cuda_backend::device_name(name, capacity);
    if (backend == FNCE_BACKEND_HOST)
      return host_backend::device_name(name, capacity);
    if (capacity < sizeof kCpuDeviceName)
      return fail(FNCE_ERROR_INVALID_VALUE, "capacity must be >= %zu for the name \"%s\", got %zu",
                  sizeof kCpuDeviceName, kCpuDeviceName, capacity);
    std::memcpy(name, kCpuDeviceName, sizeof kCpuDeviceName);
    return FNCE_SUCCESS;
  });
}

fnceStatus_t fnceMalloc(fnceBackend_t backend, void** ptr, size_t bytes) {
  return guarded("fnceMalloc", [&] {
    if (fnceStatus_t s = check_backend(backend); s != FNCE_SUCCESS)
      return s;
    if (ptr == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "ptr must not be NULL, got NULL");
    if (backend == FNCE_BACKEND_CUDA)
      return cuda_backend::malloc(ptr, bytes);
    void* q = std::malloc(bytes == 0 ? 1 : bytes); // a distinct, freeable pointer even for 0
    if (q == nullptr)
      return fail(FNCE_ERROR_INTERNAL, "fnceMalloc: out of host memory allocating %zu bytes",
                  bytes);
    *ptr = q;
    return FNCE_SUCCESS;
  });
}

fnceStatus_t fnceFree(fnceBackend_t backend, void* ptr) {
  return guarded("fnceFree", [&] {
    if (fnceStatus_t s = check_backend(backend); s != FNCE_SUCCESS)
      return s;
    if (ptr == nullptr)
      return FNCE_SUCCESS; // like free(NULL)
    if (backend == FNCE_BACKEND_CUDA)
      return cuda_backend::free(ptr);
    std::free(ptr);
    return FNCE_SUCCESS;
  });
}

fnceStatus_t fnceMemcpy(fnceBackend_t backend, void* dst, const void* src, size_t bytes,
                        fnceCopyKind_t kind) {
  return guarded("fnceMemcpy", [&] {
    if (fnceStatus_t s = check_backend(backend); s != FNCE_SUCCESS)
      return s;
    const int k = raw_enum(kind);
    if (k != FNCE_COPY_HOST_TO_BACKEND && k != FNCE_COPY_BACKEND_TO_HOST &&
        k != FNCE_COPY_BACKEND_TO_BACKEND)
      return fail(FNCE_ERROR_INVALID_VALUE,
                  "kind must be FNCE_COPY_HOST_TO_BACKEND (0), _BACKEND_TO_HOST (1) or "
                  "_BACKEND_TO_BACKEND (2), got %d",
                  k);
    if (bytes == 0)
      return FNCE_SUCCESS;
    if (dst == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "dst must not be NULL when bytes = %zu, got NULL",
                  bytes);
    if (src == nullptr)
      return fail(FNCE_ERROR_INVALID_VALUE, "src must not be NULL when bytes = %zu, got NULL",
                  bytes);
    if (backend == FNCE_BACKEND_CUDA)
      return cuda_backend::memcpy(dst, src, bytes, kind);
    std::memmove(dst, src, bytes);
    return FNCE_SUCCESS;
  });
}

fnceStatus_t fnceSynchronize(fnceBackend_t backend, void* stream) {
  return guarded("fnceSynchronize", [&] {
    if (fnceStatus_t s = check_backend(backend); s != FNCE_SUCCESS)
      return s;
    if (host_memory(backend))
      return FNCE_SUCCESS; // every CPU / HOST call has finished already
    return cuda_backend::synchronize(stream);
  });
}

} // extern "C"
