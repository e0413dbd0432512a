// cuda_emu_gmma.cpp — the emulator's Hopper layout model (see cuda_emu_gmma.h for the formulas).
// Written from the PTX ISA, independently of kernels/common/gmma_layout.h (the kernels' helpers):
// both are checked against CuTe in cute_oracle_test.cpp.
#include "cuda_emu_gmma.h"

namespace cuda_emu::gmma {

std::uint32_t swizzle(std::uint32_t a, std::uint32_t span) {
  if (span == 0)
    return a;
  // The 16-byte chunk index inside an S-byte line (S/16 chunks) is XORed with the index of the line
  // inside the 8*S-byte repeat... measured in 128-byte units: bits 7.. of the address.
  const std::uint32_t chunks = span / 16; // 2, 4, 8
  const std::uint32_t chunk = (a >> 4) & (chunks - 1);
  const std::uint32_t row = (a >> 7) & (chunks - 1);
  return (a & ~((chunks - 1) << 4)) | ((chunk ^ row) << 4);
}

Descriptor decode_descriptor(std::uint64_t desc) {
  Descriptor d;
  d.start = static_cast<std::uint32_t>(desc & 0x3FFFu) << 4;
  d.lbo = static_cast<std::uint32_t>((desc >> 16) & 0x3FFFu) << 4;
  d.sbo = static_cast<std::uint32_t>((desc >> 32) & 0x3FFFu) << 4;
  d.base_offset = static_cast<std::uint32_t>((desc >> 49) & 0x7u);
  switch (static_cast<unsigned>(desc >> 62)) {
  case 0:
    d.span = 0;
    break;
  case 1:
    d.span = 128;
    break;
  case 2:
    d.span = 64;
    break;
  default:
    d.span = 32;
    break;
  }
  return d;
}

std::uint32_t operand_address(const Descriptor& d, int trans, int mn, int k) {
  const auto umn = static_cast<std::uint32_t>(mn), uk = static_cast<std::uint32_t>(k);
  std::uint32_t off;
  if (trans == 0) { // K-major: rows of the M (or N) dimension, K contiguous
    if (d.span == 0)
      off = (umn / 8) * d.sbo + (uk / 8) * d.lbo + (umn % 8) * 16 + (uk % 8) * 2;
    else
      off = (umn / 8) * d.sbo + (umn % 8) * d.span + uk * 2;
  } else { // MN-major: rows of the K dimension, M (or N) contiguous
    if (d.span == 0) {
      off = (umn / 8) * d.sbo + (uk / 8) * d.lbo + (uk % 8) * 16 + (umn % 8) * 2;
    } else {
      const std::uint32_t per_line = d.span / 2; // 16-bit elements in one swizzle line
      off = (umn / per_line) * d.lbo + (uk / 8) * d.sbo + (uk % 8) * d.span + (umn % per_line) * 2;
    }
  }
  return swizzle(d.start + off, d.span);
}

void accumulator_coord(int thread, int i, int* row, int* col) {
  const int warp = thread / 32, lane = thread % 32;
  *row = 16 * warp + lane / 4 + ((i & 2) ? 8 : 0);
  *col = 8 * (i / 4) + 2 * (lane % 4) + (i & 1);
}

void a_fragment_coord(int thread, int e, int* row, int* col) {
  const int warp = thread / 32, lane = thread % 32, reg = e / 2;
  *row = 16 * warp + lane / 4 + ((reg & 1) ? 8 : 0);
  *col = 2 * (lane % 4) + ((reg & 2) ? 8 : 0) + (e & 1);
}

} // namespace cuda_emu::gmma
