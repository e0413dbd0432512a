// Host-side entry points of the Hopper test kernels (hopper/kernels/*.cu): mbarriers, named
// barriers, TMA and wgmma through the wrappers of kernels/common.  Standard CUDA for sm_90a: nvcc
// compiles them for the GPU variant (cuda_emu_hopper_tests_gpu), the host compiler after cuda_emu.h
// for the emulator (cuda_emu_hopper_tests).  Pointers are device pointers; each call returns the
// launch's error (or the tensor-map encoder's).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/gmma_layout.h"

namespace emu_hopper {

// ---- mbarrier_kernels.cu ----------------------------------------------------------------------
/// A producer warp streams `n` ints through a `stages`-deep ring of 32-int shared-memory slots;
/// seven consumer warps wait on each slot's "full" mbarrier, read it and arrive on its "empty"
/// one: out[i] = 3 * in[i] + 1 (256 threads, one block).  Exercises the phase parities over many
/// ring turns.
cudaError_t mbarrier_pipeline(const int* in, int* out, int n, int stages);
/// Named barriers: warps 0-3 fill a tile and bar.arrive(1, 256); warps 4-7 bar.sync(1, 256),
/// read it, fill a second tile, bar.arrive(2, 256) for warps 0-3, which bar.sync(2, 256).
/// out[i] = in[i] + 1 for i < 128 and out[128 + i] = out[i] * 2 (256 threads).
cudaError_t named_barrier_handoff(const int* in, int* out);

// ---- tma_kernels.cu ----------------------------------------------------------------------------
/// One TMA box of the 2-D tensor `src` (rows x cols elements of elem_bytes, row-major, pitch
/// row_stride bytes) at element coordinates (c0, c1), box box_cols x box_rows, with `swizzle`:
/// the shared-memory bytes of the box land in out (box bytes); when `before` is not null it gets
/// the same bytes read BEFORE the mbarrier wait.
cudaError_t tma_tile(const void* src, int elem_bytes, int cols, int rows, int row_stride,
                     int box_cols, int box_rows, int c0, int c1,
                     flashnce::kernels::gmma::Swizzle swizzle, unsigned char* out,
                     unsigned char* before);
/// The tensor-map encoder's verdict on these parameters (cudaSuccess / cudaErrorInvalidValue).
cudaError_t tma_encode(const void* base, int elem_bytes, std::uint64_t cols, std::uint64_t rows,
                       std::uint64_t row_stride, std::uint32_t box_cols, std::uint32_t box_rows,
                       flashnce::kernels::gmma::Swizzle swizzle);

// ---- wgmma_kernels.cu --------------------------------------------------------------------------
enum class InputType { bf16, f16 };
struct GemmConfig {
  InputType type = InputType::bf16;
  flashnce::kernels::gmma::Swizzle swizzle = flashnce::kernels::gmma::Swizzle::b128;
  int n = 64;                    // 64, 128, 256
  int consumers = 1;             // consumer warpgroups: M = 64 * consumers
  bool a_from_registers = false; // wgmma_rs (A fragments loaded from the swizzled tile)
  bool wrong_descriptor = false; // mutation: the descriptors name the 64-byte swizzle instead
};
/// C (M x N f32, row-major) = A (M x K, row-major 16-bit bits) * B^T (B: N x K, row-major): a
/// producer warpgroup (setmaxnreg.dec, one thread issuing TMA into a 2-stage full/empty mbarrier
/// ring) and `consumers` consumer warpgroups (setmaxnreg.inc, wgmma m64nNk16 from descriptors).
/// K a multiple of 128.
cudaError_t wgmma_gemm(const GemmConfig& config, const std::uint16_t* a, const std::uint16_t* b,
                       float* c, int k);
/// One warpgroup, A (64 x 64) and B (64 x 64, N x K) through TMA with the 128-byte swizzle, d = 1
/// then d += A[:, 0:16] B[:, 0:16]^T: before[] gets d between commit_group and wait_group,
/// after[] once the wait retired it (64 x 64 f32, row-major, each).
cudaError_t wgmma_stale(const std::uint16_t* a, const std::uint16_t* b, float* before,
                        float* after);

// ---- bug_kernels.cu (each aborts under the emulator; death tests) -----------------------------
enum class Bug {
  mbarrier_wrong_parity,     // waits for the current phase, which nobody completes
  mbarrier_tx_never_arrives, // expect_tx 1024 bytes, no copy
  mbarrier_extra_arrival,    // arrives on a phase whose arrivals are all in (tx pending)
  mbarrier_uninitialised,    // try_wait on a never-initialised mbarrier
  mbarrier_overwritten,      // a plain store into the mbarrier object
  tma_tx_mismatch,           // expect_tx 128 bytes fewer than the box
  tma_misaligned_dst,        // destination 64 bytes past a 128-byte boundary
  tma_never_waited,          // the block ends with the copy in flight
  named_count_mismatch,      // bar.sync 1 with 128 and with 64 threads
  named_deadlock,            // bar.sync(1, 128) reached by 64 threads only
  wgmma_partial_warpgroup,   // a block of 96 threads
  wgmma_without_fence,       // no wgmma.fence before the first wgmma
  wgmma_exit_in_flight,      // commit_group, no wait_group
  wgmma_descriptor_outside,  // descriptor past the end of dynamic shared memory
  wgmma_nonuniform,          // the threads of a warpgroup pass different descriptors
  setmaxnreg_nonuniform,     // one warp asks inc, the others dec
};
cudaError_t run_bug(Bug bug, float* scratch);

} // namespace emu_hopper
