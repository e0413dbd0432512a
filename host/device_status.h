// Internal: "can the CUDA backend run now?", with the reason when it cannot.  Implemented in
// host/cuda/device.cpp (CUDA runtime, real or emulated) and host/cuda_unavailable.cpp (no nvcc).
#pragma once

#include "flashnce/flashnce.h"

namespace flashnce {
namespace cuda_backend {

// FNCE_SUCCESS when a CUDA device is present; otherwise FNCE_ERROR_CUDA (runtime present, no
// usable device: "no CUDA device: cudaGetDeviceCount returned ...") or FNCE_ERROR_NOT_SUPPORTED
// (built without nvcc), with the per-thread message set.  The API layer calls it before
// forward/backward on the CUDA backend, after validation.
fnceStatus_t check_device();

} // namespace cuda_backend
} // namespace flashnce
