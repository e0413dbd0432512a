// gmma_layout.h — Hopper operand layouts as plain integer functions (host and device): the
// 64-bit wgmma shared-memory matrix descriptor, the 32/64/128-byte shared-memory swizzles, and the
// wgmma register fragments.  No PTX here (wgmma.cuh, tma.cuh use these), so host code and the tests
// can call them; tests/emu/cute_oracle_test.cpp checks them bit for bit against CuTe.
//
// From the PTX ISA ("Matrix Descriptor Format", "Shared Memory Matrix Layout", "Register Fragments
// ... wgmma .m64nNk16") and the CUDA driver API (CUtensorMapSwizzle):
//   descriptor  bits 0-13 start address >> 4, 16-29 leading-dimension byte offset (LBO) >> 4,
//               32-45 stride-dimension byte offset (SBO) >> 4, 49-51 base offset, 62-63 layout:
//               0 no swizzle (interleave), 1 128B, 2 64B, 3 32B.  (x & 0x3FFFF) >> 4 encodes each.
//   swizzle S   (S = 32, 64, 128 bytes) the 16-byte chunk bits [4, 4+log2(S/16)) of a shared
//               address are XORed with bits [7, 7+log2(S/16)); CuTe's Swizzle<1|2|3, 4, 3> on byte
//               addresses.  The pattern repeats every 8*S bytes (256, 512, 1024), so swizzled tiles
//               are aligned to that (base offset 0).
//   K-major tile as a TMA box of `rows` x S bytes (S-byte rows, 16-bit elements) with swizzle S:
//               SBO = 8*S (one 8-row group to the next), LBO unused (1, as CUTLASS encodes it); the
//               k-th 16-element slice starts 32*k bytes further (the swizzle uses absolute address
//               bits, so the start may move inside the pattern).
//   D fragment  (m64nN f32) warpgroup thread t (w = t/32, g = lane/4, q = lane%4) holds d[i] at
//               row 16w + g + 8*((i/2)%2), column 8*(i/4) + 2q + i%2.
//   A fragment  (m64k16 16-bit, A from registers) register r, half h of thread t: row 16w + g +
//               8*(r%2), column 2q + 8*(r/2) + h (the mma.m16n8k16 A layout per warp).
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(CUDA_EMU)
#define FLASHNCE_GMMA_HD __host__ __device__
#else
#define FLASHNCE_GMMA_HD
#endif

namespace flashnce::kernels::gmma {

/// A shared-memory swizzle mode by its span in bytes.
enum class Swizzle : std::uint32_t { none = 0, b32 = 32, b64 = 64, b128 = 128 };

/// The descriptor's 2-bit layout field for a swizzle mode.
FLASHNCE_GMMA_HD constexpr std::uint64_t descriptor_layout_bits(Swizzle s) {
  return s == Swizzle::b128 ? 1u : s == Swizzle::b64 ? 2u : s == Swizzle::b32 ? 3u : 0u;
}

/// matrix-descriptor-encode(x) = (x & 0x3FFFF) >> 4
FLASHNCE_GMMA_HD constexpr std::uint64_t descriptor_encode(std::uint32_t x) {
  return (x & 0x3FFFFu) >> 4;
}

/// The 64-bit matrix descriptor of an operand at shared-window address `smem_address`.
FLASHNCE_GMMA_HD constexpr std::uint64_t make_descriptor(std::uint32_t smem_address,
                                                         std::uint32_t lbo_bytes,
                                                         std::uint32_t sbo_bytes, Swizzle s,
                                                         std::uint32_t base_offset = 0) {
  return descriptor_encode(smem_address) | (descriptor_encode(lbo_bytes) << 16) |
         (descriptor_encode(sbo_bytes) << 32) | (std::uint64_t{base_offset & 7u} << 49) |
         (descriptor_layout_bits(s) << 62);
}

/// K-major operand written as S-byte rows with swizzle S (a TMA box of rows x S bytes):
/// SBO = 8 S, LBO field 1 (unused).  `smem_address` is where the 16-element k slice starts.
FLASHNCE_GMMA_HD constexpr std::uint64_t k_major_swizzled_descriptor(std::uint32_t smem_address,
                                                                     Swizzle s) {
  return make_descriptor(smem_address, 16, 8 * static_cast<std::uint32_t>(s), s);
}

/// K-major operand without swizzle: 8x16-byte core matrices (128 contiguous bytes), the next 8
/// rows `sbo_bytes` further, the second 8 k elements `lbo_bytes` further.
FLASHNCE_GMMA_HD constexpr std::uint64_t k_major_interleaved_descriptor(std::uint32_t smem_address,
                                                                        std::uint32_t lbo_bytes,
                                                                        std::uint32_t sbo_bytes) {
  return make_descriptor(smem_address, lbo_bytes, sbo_bytes, Swizzle::none);
}

/// MN-major operand written as S-byte rows of the K dimension (a TMA box of k rows x S bytes of M
/// or N) with swizzle S: 8 k rows to the next 8 SBO = 8 S apart; the next S/2 elements of M/N (the
/// next box) `lbo_bytes` further.
FLASHNCE_GMMA_HD constexpr std::uint64_t mn_major_swizzled_descriptor(std::uint32_t smem_address,
                                                                      Swizzle s,
                                                                      std::uint32_t lbo_bytes) {
  return make_descriptor(smem_address, lbo_bytes, 8 * static_cast<std::uint32_t>(s), s);
}

/// The swizzled shared-window address of byte address `a` (CuTe Swizzle<log2(S/16), 4, 3>).
FLASHNCE_GMMA_HD constexpr std::uint32_t swizzle_address(std::uint32_t a, Swizzle s) {
  const std::uint32_t bits = s == Swizzle::b128  ? 0x7u
                             : s == Swizzle::b64 ? 0x3u
                             : s == Swizzle::b32 ? 0x1u
                                                 : 0u;
  return a ^ (((a >> 7) & bits) << 4);
}

/// Row and column of accumulator register i of warpgroup thread t (wgmma m64nN, f32 D).
struct RowCol {
  int row, col;
};
FLASHNCE_GMMA_HD constexpr RowCol accumulator_coord(int t, int i) {
  return RowCol{16 * (t / 32) + (t % 32) / 4 + 8 * ((i / 2) % 2), 8 * (i / 4) + 2 * (t % 4) + i % 2};
}

/// Row and column of half h of A register r of warpgroup thread t (wgmma m64k16, 16-bit A).
FLASHNCE_GMMA_HD constexpr RowCol a_fragment_coord(int t, int r, int h) {
  return RowCol{16 * (t / 32) + (t % 32) / 4 + 8 * (r % 2), 2 * (t % 4) + 8 * (r / 2) + h};
}

} // namespace flashnce::kernels::gmma
