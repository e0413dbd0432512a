// cuda_emu_gmma.h — the emulator's model of the Hopper operand layouts, as plain functions (no CUDA
// headers): shared-memory swizzles, wgmma matrix descriptors, the wgmma register fragments, and
// the emulator's tensor-map encoding.  The runtime uses them for wgmma and TMA; the CuTe oracle
// tests (cute_oracle_test.cpp) compare them with CUTLASS's independent implementation.
//
// Model (PTX ISA "Asynchronous Warpgroup Level Matrix Multiply-Accumulate", "Tensor copy"):
//   * A swizzle of span S (32, 64, 128 bytes) permutes the 16-byte chunks of a shared-memory
//     address: address bits [4, 4+log2(S/16)) are XORed with bits [7, 7+log2(S/16)) of the same
//     address (the pattern repeats every 8*S bytes: 256, 512, 1024).  The bits are those of the
//     absolute shared-window address, so TMA (which writes a tile) and wgmma (which reads it) agree
//     whenever both name the same addresses.
//   * A matrix descriptor (64 bits): start address >> 4 in bits 0-13, leading-dimension byte
//     offset (LBO) >> 4 in 16-29, stride-dimension byte offset (SBO) >> 4 in 32-45, base offset in
//     49-51 (must be 0 here: not emulated), layout in 62-63 (0 interleave/none, 1 128B, 2 64B,
//     3 32B swizzle).
//   * Canonical layouts, 16-bit elements (T = 8 elements = 16 bytes), (mn, k) -> byte offset
//     before the swizzle, for the K-major operand (trans 0) and the MN-major one (trans 1):
//       K-major,  none:  (mn/8)*SBO + (k/8)*LBO + (mn%8)*16 + (k%8)*2
//       K-major,  S:     (mn/8)*SBO + (mn%8)*S + k*2                       (LBO unused)
//       MN-major, none:  (mn/8)*SBO + (k/8)*LBO + (k%8)*16 + (mn%8)*2
//       MN-major, S:     (mn/(S/2))*LBO + (k/8)*SBO + (k%8)*S + (mn%(S/2))*2
//   * wgmma D (m64nN, f32): thread t of the warpgroup (warp w = t/32, g = lane/4, q = lane%4)
//     holds d[i] = (row 16w + g + 8*((i/2)%2), column 8*(i/4) + 2q + i%2).  A from registers
//     (m64k16, 16-bit): element e of the 8 (register e/2, half e%2) is (row 16w + g + 8*((e/2)%2),
//     column 2q + 8*(e/4) + e%2).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cuda_emu::gmma {

/// Swizzle span in bytes: 0 (none), 32, 64 or 128.
std::uint32_t swizzle(std::uint32_t shared_address, std::uint32_t span);

struct Descriptor {
  std::uint32_t start = 0, lbo = 0, sbo = 0; // bytes
  std::uint32_t base_offset = 0;
  std::uint32_t span = 0; // swizzle span in bytes (0: interleave / none)
};
Descriptor decode_descriptor(std::uint64_t desc);

/// The shared-window byte address of element (mn, k) of a 16-bit operand described by `desc`
/// (trans 0: K-major, 1: MN-major), after the swizzle.
std::uint32_t operand_address(const Descriptor& d, int trans, int mn, int k);

/// The (row, column) of accumulator register i of warpgroup thread t (m64nN f32), and of element
/// e (0..7) of the A fragment (m64k16, 16-bit) of thread t.
void accumulator_coord(int thread, int i, int* row, int* col);
void a_fragment_coord(int thread, int e, int* row, int* col);

// ---- the emulator's CUtensorMap contents (cuTensorMapEncodeTiled under the emulator) ----------
constexpr std::uint32_t kTensorMapMagic = 0x54454D41u; // "AMET"
struct TensorMap {
  std::uint32_t magic;
  std::uint8_t dtype, rank, interleave, swizzle, oob_fill, elem_bytes, l2, pad;
  std::uint64_t base;
  std::uint32_t dim_minus_1[5]; // globalDim - 1 (globalDim may be 2^32)
  std::uint32_t pad2;
  std::uint64_t stride[5]; // bytes; stride[0] = element size, stride[i] = globalStrides[i-1]
  std::uint16_t box[5];
  std::uint8_t element_stride[5];
};
static_assert(sizeof(TensorMap) <= 128, "fits in a CUtensorMap");

} // namespace cuda_emu::gmma
