// wgmma.cuh — warpgroup matrix multiply-accumulate (wgmma.mma_async, sm_90a) with shared-memory
// matrix descriptors, the only place with its PTX.
//
// A warpgroup is 4 consecutive warps (threads 128k .. 128k+127).  wgmma_ss<N>(d, desc_a, desc_b,
// scale_d) computes D (64 x N, f32) = A (64 x 16) * B (16 x N) + (scale_d ? D : 0) with A and B
// in shared memory, described by 64-bit descriptors (gmma_layout.h: start address, LBO, SBO,
// swizzle); wgmma_rs<N> takes A from registers (the mma.m16n8k16 A layout per warp).  Each of the
// 128 threads holds N/2 accumulators d[i] (gmma_layout.h, accumulator_coord).  TransA / TransB 0:
// K-major operand, 1: M-/N-major.  N in {64, 128, 256}; inputs bf16 or f16.
//
// Asynchronous: the wgmma only starts at issue.  Protocol (PTX ISA): wgmma_fence() before the first
// wgmma and whenever the accumulator or A registers were touched since; the wgmmas issued since
// the last wgmma_commit() form a group; wgmma_wait<K>() waits until at most K groups are pending.
// D must not be read or written, nor the operands' shared memory overwritten, until the wait that
// retires its group; wgmma_fence_operand(d) keeps the compiler from moving accumulator accesses
// across these points.
//
// Compiled for sm_90a only (`-gencode arch=compute_90a,code=sm_90a`): elsewhere the bodies trap.
// Under the CPU emulator (CUDA_EMU) wgmma is a warpgroup collective of tests/emu that decodes the
// descriptors and swizzles, multiplies exactly (sums in double, rounded once) and writes D only at
// the wait_group that retires its group (reading d earlier sees the old values); fence, commit and
// wait are warp collectives.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gmma_layout.h"

namespace flashnce::kernels {

enum class WgmmaType { bf16, f16 };

#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FLASHNCE_WGMMA_PTX 1
#endif

/// The shared-window address of a shared-memory pointer (for descriptors).
__device__ __forceinline__ std::uint32_t wgmma_smem_address(const void* p) {
#if defined(CUDA_EMU)
  return ::cuda_emu::detail::shared_address(p);
#elif defined(__CUDA_ARCH__)
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
#else
  (void)p;
  return 0;
#endif
}

/// Descriptor of a K-major operand tile written as S-byte rows with swizzle S (TMA box rows x S
/// bytes); `p` is where its 16-element k slice starts.
__device__ __forceinline__ std::uint64_t wgmma_desc_k_major(const void* p, gmma::Swizzle s) {
  return gmma::k_major_swizzled_descriptor(wgmma_smem_address(p), s);
}

/// wgmma.fence.sync.aligned (all 32 lanes of the warp).
__device__ __forceinline__ void wgmma_fence() {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::wgmma_fence();
#elif defined(FLASHNCE_WGMMA_PTX)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// wgmma.commit_group.sync.aligned: the wgmmas issued since the last commit form one group.
__device__ __forceinline__ void wgmma_commit() {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::wgmma_commit();
#elif defined(FLASHNCE_WGMMA_PTX)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// wgmma.wait_group.sync.aligned K: at most K of this warp's groups remain pending.
template <int K> __device__ __forceinline__ void wgmma_wait() {
  static_assert(K >= 0 && K <= 7, "wait_group takes 0..7");
#if defined(CUDA_EMU)
  ::cuda_emu::detail::wgmma_wait(K);
#elif defined(FLASHNCE_WGMMA_PTX)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(K) : "memory");
#else
  __trap();
#endif
}

/// Keeps the compiler from moving accesses to the accumulators across wgmma issue / wait.
template <int R> __device__ __forceinline__ void wgmma_fence_operand(float (&d)[R]) {
#if defined(FLASHNCE_WGMMA_PTX)
#pragma unroll
  for (int i = 0; i < R; ++i)
    asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}

#if defined(FLASHNCE_WGMMA_PTX)
// Generated operand lists (%0 .. %R-1 are the accumulators).
#define FLASHNCE_WGMMA_D32 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define FLASHNCE_WGMMA_D64 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, " \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, " \
  "%56, %57, %58, %59, %60, %61, %62, %63}"
#define FLASHNCE_WGMMA_D128 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, " \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, " \
  "%56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, " \
  "%74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, " \
  "%92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, " \
  "%108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, " \
  "%123, %124, %125, %126, %127}"
#define FLASHNCE_WGMMA_OUT4(d, i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define FLASHNCE_WGMMA_OUT16(d, i)                                                                 \
  FLASHNCE_WGMMA_OUT4(d, i), FLASHNCE_WGMMA_OUT4(d, i + 4), FLASHNCE_WGMMA_OUT4(d, i + 8),         \
      FLASHNCE_WGMMA_OUT4(d, i + 12)
#define FLASHNCE_WGMMA_OUT32(d) FLASHNCE_WGMMA_OUT16(d, 0), FLASHNCE_WGMMA_OUT16(d, 16)
#define FLASHNCE_WGMMA_OUT64(d)                                                                    \
  FLASHNCE_WGMMA_OUT16(d, 0), FLASHNCE_WGMMA_OUT16(d, 16), FLASHNCE_WGMMA_OUT16(d, 32),            \
      FLASHNCE_WGMMA_OUT16(d, 48)
#define FLASHNCE_WGMMA_OUT128(d)                                                                   \
  FLASHNCE_WGMMA_OUT16(d, 0), FLASHNCE_WGMMA_OUT16(d, 16), FLASHNCE_WGMMA_OUT16(d, 32),            \
      FLASHNCE_WGMMA_OUT16(d, 48), FLASHNCE_WGMMA_OUT16(d, 64), FLASHNCE_WGMMA_OUT16(d, 80),       \
      FLASHNCE_WGMMA_OUT16(d, 96), FLASHNCE_WGMMA_OUT16(d, 112)
#define FLASHNCE_WGMMA_SS_64(T) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." T "." T " " FLASHNCE_WGMMA_D32 \
        ", %32, %33, p, %35, %36, %37, %38;\n}\n" \
               : FLASHNCE_WGMMA_OUT32(d) \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(ScaleA), "n"(ScaleB), "n"(TransA), \
                 "n"(TransB))
#define FLASHNCE_WGMMA_SS_128(T) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." T "." T " " FLASHNCE_WGMMA_D64 \
        ", %64, %65, p, %67, %68, %69, %70;\n}\n" \
               : FLASHNCE_WGMMA_OUT64(d) \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(ScaleA), "n"(ScaleB), "n"(TransA), \
                 "n"(TransB))
#define FLASHNCE_WGMMA_SS_256(T) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n256k16.f32." T "." T " " FLASHNCE_WGMMA_D128 \
        ", %128, %129, p, %131, %132, %133, %134;\n}\n" \
               : FLASHNCE_WGMMA_OUT128(d) \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(ScaleA), "n"(ScaleB), "n"(TransA), \
                 "n"(TransB))
#define FLASHNCE_WGMMA_RS_64(T) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." T "." T " " FLASHNCE_WGMMA_D32 \
        ", {%32, %33, %34, %35}, %36, p, %38, %39, %40;\n}\n" \
               : FLASHNCE_WGMMA_OUT32(d) \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d), \
                 "n"(ScaleA), "n"(ScaleB), "n"(TransB))
#define FLASHNCE_WGMMA_RS_128(T) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." T "." T " " FLASHNCE_WGMMA_D64 \
        ", {%64, %65, %66, %67}, %68, p, %70, %71, %72;\n}\n" \
               : FLASHNCE_WGMMA_OUT64(d) \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d), \
                 "n"(ScaleA), "n"(ScaleB), "n"(TransB))
#define FLASHNCE_WGMMA_RS_256(T) \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n256k16.f32." T "." T " " FLASHNCE_WGMMA_D128 \
        ", {%128, %129, %130, %131}, %132, p, %134, %135, %136;\n}\n" \
               : FLASHNCE_WGMMA_OUT128(d) \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d), \
                 "n"(ScaleA), "n"(ScaleB), "n"(TransB))
#endif

/// D (64 x N) = A B + (scale_d ? D : 0), A and B from shared-memory descriptors.
template <int N, WgmmaType Type, int TransA = 0, int TransB = 0, int ScaleA = 1, int ScaleB = 1>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], std::uint64_t desc_a,
                                         std::uint64_t desc_b, int scale_d) {
  static_assert(N == 64 || N == 128 || N == 256, "wgmma_ss: N in {64, 128, 256}");
  static_assert((TransA == 0 || TransA == 1) && (TransB == 0 || TransB == 1), "trans: 0 or 1");
  static_assert((ScaleA == 1 || ScaleA == -1) && (ScaleB == 1 || ScaleB == -1), "scale: +-1");
#if defined(CUDA_EMU)
  ::cuda_emu::detail::wgmma(
      d, N,
      Type == WgmmaType::bf16 ? ::cuda_emu::detail::MmaType::bf16 : ::cuda_emu::detail::MmaType::f16,
      nullptr, desc_a, desc_b, scale_d, ScaleA, ScaleB, TransA, TransB);
#elif defined(FLASHNCE_WGMMA_PTX)
  if constexpr (Type == WgmmaType::bf16) {
    if constexpr (N == 64)
      FLASHNCE_WGMMA_SS_64("bf16");
    else if constexpr (N == 128)
      FLASHNCE_WGMMA_SS_128("bf16");
    else
      FLASHNCE_WGMMA_SS_256("bf16");
  } else {
    if constexpr (N == 64)
      FLASHNCE_WGMMA_SS_64("f16");
    else if constexpr (N == 128)
      FLASHNCE_WGMMA_SS_128("f16");
    else
      FLASHNCE_WGMMA_SS_256("f16");
  }
#else
  (void)d;
  (void)desc_a;
  (void)desc_b;
  (void)scale_d;
  __trap();
#endif
}

/// D (64 x N) = A B + (scale_d ? D : 0), A from registers (4 per thread: gmma_layout.h,
/// a_fragment_coord), B from a shared-memory descriptor.
template <int N, WgmmaType Type, int TransB = 0, int ScaleA = 1, int ScaleB = 1>
__device__ __forceinline__ void wgmma_rs(float (&d)[N / 2], const std::uint32_t (&a)[4],
                                         std::uint64_t desc_b, int scale_d) {
  static_assert(N == 64 || N == 128 || N == 256, "wgmma_rs: N in {64, 128, 256}");
  static_assert(TransB == 0 || TransB == 1, "trans: 0 or 1");
  static_assert((ScaleA == 1 || ScaleA == -1) && (ScaleB == 1 || ScaleB == -1), "scale: +-1");
#if defined(CUDA_EMU)
  ::cuda_emu::detail::wgmma(
      d, N,
      Type == WgmmaType::bf16 ? ::cuda_emu::detail::MmaType::bf16 : ::cuda_emu::detail::MmaType::f16,
      a, 0, desc_b, scale_d, ScaleA, ScaleB, 0, TransB);
#elif defined(FLASHNCE_WGMMA_PTX)
  if constexpr (Type == WgmmaType::bf16) {
    if constexpr (N == 64)
      FLASHNCE_WGMMA_RS_64("bf16");
    else if constexpr (N == 128)
      FLASHNCE_WGMMA_RS_128("bf16");
    else
      FLASHNCE_WGMMA_RS_256("bf16");
  } else {
    if constexpr (N == 64)
      FLASHNCE_WGMMA_RS_64("f16");
    else if constexpr (N == 128)
      FLASHNCE_WGMMA_RS_128("f16");
    else
      FLASHNCE_WGMMA_RS_256("f16");
  }
#else
  (void)d;
  (void)a;
  (void)desc_b;
  (void)scale_d;
  __trap();
#endif
}

} // namespace flashnce::kernels
