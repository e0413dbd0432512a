// mma.cuh — tensor-core matrix multiply-accumulate and ldmatrix (sm_80+), the only place with
// their PTX.
//
// Fragment layouts are the PTX ISA's (groupID = lane >> 2, tig = lane % 4; "(r, c)" = row, column):
//   m16n8k16, 16-bit A (16x16 row-major), 4 regs of 2 halves (low half = lower column):
//     a[0] = (g, 2t..2t+1)   a[1] = (g+8, 2t..2t+1)   a[2] = (g, 2t+8..2t+9)   a[3] = (g+8,
//     2t+8..2t+9)
//   m16n8k16, 16-bit B (16x8, "col": K x N), 2 regs:  b[0] = (k 2t..2t+1, n g)   b[1] = (k
//   2t+8..2t+9, n g) m16n8k8 tf32 A (16x8): a[0] = (g, t)  a[1] = (g+8, t)  a[2] = (g, t+4)  a[3] =
//   (g+8, t+4) m16n8k8 tf32 B (8x8):  b[0] = (k t, n g)   b[1] = (k t+4, n g) C, D (16x8 f32):
//   c[0..1] = (g, 2t..2t+1)   c[2..3] = (g+8, 2t..2t+1)
// ldmatrix.m8n8.x{1,2,4}[.trans].b16: lanes 8i..8i+7 pass the (16-byte aligned) shared-memory row
// addresses of matrix i; lane l receives in r[i] row l/4, columns 2(l%4), 2(l%4)+1 of matrix i
// (with .trans: column l/4, rows 2(l%4), 2(l%4)+1), the lower index in the low half.
//
// Under the CPU emulator (CUDA_EMU) the bodies are warp collectives of tests/emu that follow these
// layouts element by element: a wrong fragment index gives a wrong answer there as on a GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace flashnce::kernels {

#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FLASHNCE_MMA_PTX 1
__device__ __forceinline__ std::uint32_t mma_smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
#endif

/// D = A·B + C, m16n8k16, bf16 inputs, f32 accumulation.  d may alias c.
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4],
                                                  const std::uint32_t (&b)[2],
                                                  const float (&c)[4]) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::mma_m16n8(d, a, b, c, ::cuda_emu::detail::MmaType::bf16);
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  (void)d;
  (void)a;
  (void)b;
  (void)c;
  __trap();
#endif
}

/// D = A·B + C, m16n8k16, f16 inputs, f32 accumulation.  d may alias c.
__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], const std::uint32_t (&a)[4],
                                                 const std::uint32_t (&b)[2], const float (&c)[4]) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::mma_m16n8(d, a, b, c, ::cuda_emu::detail::MmaType::f16);
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  (void)d;
  (void)a;
  (void)b;
  (void)c;
  __trap();
#endif
}

/// D = A·B + C, m16n8k8, tf32 inputs (f32 bit patterns, see float_to_tf32), f32 accumulation.
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4],
                                                 const std::uint32_t (&b)[2], const float (&c)[4]) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::mma_m16n8(d, a, b, c, ::cuda_emu::detail::MmaType::tf32);
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#else
  (void)d;
  (void)a;
  (void)b;
  (void)c;
  __trap();
#endif
}

/// cvt.rna.tf32.f32: round to the nearest tf32 (ties away from zero); low 13 bits zero.
__device__ __forceinline__ std::uint32_t float_to_tf32(float x) {
#if defined(CUDA_EMU)
  return ::cuda_emu::detail::float_to_tf32(x);
#elif defined(FLASHNCE_MMA_PTX)
  std::uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#else
  (void)x;
  __trap();
  return 0;
#endif
}

#if defined(CUDA_EMU)
#define FLASHNCE_LDMATRIX_BODY(N, TRANS) ::cuda_emu::detail::ldmatrix(r, N, TRANS, smem_row);
#endif

/// ldmatrix.sync.aligned.m8n8.x1.shared.b16
__device__ __forceinline__ void ldmatrix_x1(std::uint32_t (&r)[1], const void* smem_row) {
#if defined(CUDA_EMU)
  FLASHNCE_LDMATRIX_BODY(1, false)
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0])
               : "r"(mma_smem_address(smem_row)));
#else
  (void)r;
  (void)smem_row;
  __trap();
#endif
}

/// ldmatrix.sync.aligned.m8n8.x2.shared.b16
__device__ __forceinline__ void ldmatrix_x2(std::uint32_t (&r)[2], const void* smem_row) {
#if defined(CUDA_EMU)
  FLASHNCE_LDMATRIX_BODY(2, false)
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(mma_smem_address(smem_row)));
#else
  (void)r;
  (void)smem_row;
  __trap();
#endif
}

/// ldmatrix.sync.aligned.m8n8.x4.shared.b16
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem_row) {
#if defined(CUDA_EMU)
  FLASHNCE_LDMATRIX_BODY(4, false)
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(mma_smem_address(smem_row)));
#else
  (void)r;
  (void)smem_row;
  __trap();
#endif
}

/// ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16
__device__ __forceinline__ void ldmatrix_x1_trans(std::uint32_t (&r)[1], const void* smem_row) {
#if defined(CUDA_EMU)
  FLASHNCE_LDMATRIX_BODY(1, true)
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0])
               : "r"(mma_smem_address(smem_row)));
#else
  (void)r;
  (void)smem_row;
  __trap();
#endif
}

/// ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16
__device__ __forceinline__ void ldmatrix_x2_trans(std::uint32_t (&r)[2], const void* smem_row) {
#if defined(CUDA_EMU)
  FLASHNCE_LDMATRIX_BODY(2, true)
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(mma_smem_address(smem_row)));
#else
  (void)r;
  (void)smem_row;
  __trap();
#endif
}

/// ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* smem_row) {
#if defined(CUDA_EMU)
  FLASHNCE_LDMATRIX_BODY(4, true)
#elif defined(FLASHNCE_MMA_PTX)
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(mma_smem_address(smem_row)));
#else
  (void)r;
  (void)smem_row;
  __trap();
#endif
}

#if defined(CUDA_EMU)
#undef FLASHNCE_LDMATRIX_BODY
#endif

} // namespace flashnce::kernels
