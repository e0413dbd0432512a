// An independent oracle for the Hopper operand layouts: CUTLASS's CuTe (PyPI wheel nvidia-cutlass,
// headers only, host code only) against the kernels' helpers (kernels/common/gmma_layout.h) and
// the emulator's model (tests/emu/cuda_emu_gmma.h), so that neither can share one misreading of
// the PTX ISA with the other.  Compared bit for bit / element for element:
//   * wgmma matrix descriptors: CuTe's make_gmma_desc of the canonical K-major (INTER, SW32, SW64,
//     SW128) and MN-major (SW32, SW64, SW128) smem tiles, every 16-element k slice, start address
//     included, against gmma::k_major_*_descriptor / mn_major_swizzled_descriptor;
//   * the swizzled element placement: CuTe's smem layout (its Swizzle<B,4,3> composed with the
//     atom) against the emulator's operand_address of that descriptor, and against the kernels'
//     swizzle_address of the unswizzled offset;
//   * the register fragments: CuTe's MMA_Traits CLayout (m64nN f32 D, N = 8..256) and ALayout
//     (m64k16 A from registers) against both accumulator_coord / a_fragment_coord.
// CuTe stays out of the library (the emulator cannot run its inline PTX); here it only computes
// layouts and descriptors on the host.  Its descriptor start address comes from
// __cvta_generic_to_shared, which this file provides on the host as the emulator's shared window
// (the buffer below starts at kSharedWindowBase).
#include <cstddef>
#include <cstdint>

namespace cute_oracle {
alignas(1024) unsigned char g_smem[65536];   // the "shared memory" the CuTe tensors point into
constexpr std::uint32_t kWindowBase = 0x400; // = cuda_emu::detail::kSharedWindowBase
} // namespace cute_oracle

// What CuTe's cast_smem_ptr_to_uint calls on a GPU; on the host: the address in g_smem's window.
inline std::size_t __cvta_generic_to_shared(const void* p) {
  return cute_oracle::kWindowBase +
         static_cast<std::size_t>(static_cast<const unsigned char*>(p) - cute_oracle::g_smem);
}
#define CUTE_CVTA_GENERIC_TO_SHARED_ACTIVATED 1

#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cute/tensor.hpp>

#include <gtest/gtest.h>

#include "cuda_emu_gmma.h"
#include "kernels/common/gmma_layout.h"

namespace cute_oracle {
namespace {

using namespace cute;
namespace ours = flashnce::kernels::gmma;
namespace emu = cuda_emu::gmma;

std::uint32_t window(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// ---- descriptors and swizzled placement, K-major --------------------------------------------
// A 64 x 64 tile of the atom (the TMA box the kernels use: 64 rows of S bytes for SW128; narrower
// spans tile along k as well), sliced into its four 16-element k slices as the wgmma loop does.
template <class T, class Atom>
void check_k_major(ours::Swizzle s, std::uint32_t tile_offset, const char* name) {
  SCOPED_TRACE(name);
  auto tile = tile_to_shape(Atom{}, Shape<_64, _64>{});
  auto* base = reinterpret_cast<T*>(g_smem + tile_offset);
  Tensor t = make_tensor(make_smem_ptr(base), tile);
  for (int kk = 0; kk < 4; ++kk) {
    SCOPED_TRACE(testing::Message() << "k slice " << kk);
    Tensor tk = local_tile(t, Shape<_64, _16>{}, make_coord(0, kk));
    const std::uint64_t cute_desc = SM90::GMMA::make_gmma_desc<GMMA::Major::K>(tk).desc_;
    const std::uint32_t start = window(raw_pointer_cast(tk.data()));
    std::uint64_t mine;
    if (s == ours::Swizzle::none) {
      // INTER: 8 x 16-byte core matrices; CuTe's column-major tiling puts the 8 atoms of M next to
      // each other (128 bytes apart) and the next 8 k elements after all of M (8 * 128 bytes).
      mine = ours::k_major_interleaved_descriptor(start, 1024, 128);
    } else {
      // The slice starts 32 bytes per k slice into the tile's first swizzle line (the rule the
      // kernels follow); CuTe's own slicing has to agree.
      const std::uint32_t span = static_cast<std::uint32_t>(s);
      const std::uint32_t per_atom_k = span / 2; // elements of k in one swizzle line
      const std::uint32_t atom = (16 * kk) / per_atom_k, within = (16 * kk) % per_atom_k;
      EXPECT_EQ(start, window(base) + atom * 64 * span + within * 2);
      mine = ours::k_major_swizzled_descriptor(start, s);
    }
    EXPECT_EQ(cute_desc, mine) << std::hex << "CuTe 0x" << cute_desc << " ours 0x" << mine;

    // Where CuTe stores element (mn, k) of the slice, and where the emulator reads it from.
    const emu::Descriptor d = emu::decode_descriptor(cute_desc);
    for (int mn = 0; mn < 64; ++mn)
      for (int k = 0; k < 16; ++k) {
        const std::uint32_t cute_byte = window(raw_pointer_cast(&tk(mn, k)));
        ASSERT_EQ(emu::operand_address(d, 0, mn, k), cute_byte) << "mn " << mn << " k " << k;
        // The kernels' swizzle of the unswizzled (row-major S-byte lines) offset.
        if (s != ours::Swizzle::none) {
          const std::uint32_t span = static_cast<std::uint32_t>(s);
          const std::uint32_t col = 16u * kk + k, per_line = span / 2;
          const std::uint32_t linear = window(base) + (col / per_line) * 64 * span +
                                       static_cast<std::uint32_t>(mn) * span + (col % per_line) * 2;
          ASSERT_EQ(ours::swizzle_address(linear, s), cute_byte) << "mn " << mn << " k " << k;
        }
      }
  }
}

template <class T> void check_all_k_major() {
  check_k_major<T, GMMA::Layout_K_SW128_Atom<T>>(ours::Swizzle::b128, 0, "K SW128");
  check_k_major<T, GMMA::Layout_K_SW128_Atom<T>>(ours::Swizzle::b128, 8192, "K SW128 at 8 KiB");
  check_k_major<T, GMMA::Layout_K_SW64_Atom<T>>(ours::Swizzle::b64, 1024, "K SW64");
  check_k_major<T, GMMA::Layout_K_SW32_Atom<T>>(ours::Swizzle::b32, 2048, "K SW32");
  check_k_major<T, GMMA::Layout_K_INTER_Atom<T>>(ours::Swizzle::none, 4096, "K INTER");
}

TEST(CuteOracle, KMajorDescriptorsAndPlacementMatchCuteBf16) {
  check_all_k_major<cutlass::bfloat16_t>();
}
TEST(CuteOracle, KMajorDescriptorsAndPlacementMatchCuteF16) {
  check_all_k_major<cutlass::half_t>();
}

// ---- MN-major swizzled ------------------------------------------------------------------------
// A 128 (MN) x 16 (k) operand of the atom, the atoms along k first (Step<_2, _1>: the 8-row k
// groups S * 8 bytes apart, as a TMA box of k rows x S bytes lays them out), the next S/2 elements
// of MN one box (16 k rows x S bytes) further.
template <class T, class Atom> void check_mn_major(ours::Swizzle s, const char* name) {
  SCOPED_TRACE(name);
  const std::uint32_t span = static_cast<std::uint32_t>(s);
  auto tile = tile_to_shape(Atom{}, Shape<_128, _16>{}, Step<_2, _1>{});
  auto* base = reinterpret_cast<T*>(g_smem + 16384);
  Tensor t = make_tensor(make_smem_ptr(base), tile);
  const std::uint64_t cute_desc = SM90::GMMA::make_gmma_desc<GMMA::Major::MN>(t).desc_;
  const std::uint64_t mine = ours::mn_major_swizzled_descriptor(window(base), s, 16 * span);
  EXPECT_EQ(cute_desc, mine) << std::hex << "CuTe 0x" << cute_desc << " ours 0x" << mine;
  const emu::Descriptor d = emu::decode_descriptor(cute_desc);
  for (int mn = 0; mn < 128; ++mn)
    for (int k = 0; k < 16; ++k)
      ASSERT_EQ(emu::operand_address(d, 1, mn, k), window(raw_pointer_cast(&t(mn, k))))
          << "mn " << mn << " k " << k;
}

template <class T> void check_all_mn_major() {
  check_mn_major<T, GMMA::Layout_MN_SW128_Atom<T>>(ours::Swizzle::b128, "MN SW128");
  check_mn_major<T, GMMA::Layout_MN_SW64_Atom<T>>(ours::Swizzle::b64, "MN SW64");
  check_mn_major<T, GMMA::Layout_MN_SW32_Atom<T>>(ours::Swizzle::b32, "MN SW32");
}

TEST(CuteOracle, MnMajorDescriptorsAndPlacementMatchCuteBf16) {
  check_all_mn_major<cutlass::bfloat16_t>();
}
TEST(CuteOracle, MnMajorDescriptorsAndPlacementMatchCuteF16) {
  check_all_mn_major<cutlass::half_t>();
}

// ---- register fragments -----------------------------------------------------------------------
// CuTe's CLayout maps (thread, value) to an index of the column-major 64 x N D tile.
template <class Op> void check_accumulators(int n) {
  SCOPED_TRACE(testing::Message() << "N " << n);
  using C = typename MMA_Traits<Op>::CLayout;
  ASSERT_EQ(int(size<0>(C{})), 128);
  ASSERT_EQ(int(size<1>(C{})), n / 2);
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < n / 2; ++i) {
      const int idx = C{}(t, i), row = idx % 64, col = idx / 64;
      const ours::RowCol rc = ours::accumulator_coord(t, i);
      ASSERT_EQ(rc.row, row) << "thread " << t << " value " << i;
      ASSERT_EQ(rc.col, col) << "thread " << t << " value " << i;
      int er = -1, ec = -1;
      emu::accumulator_coord(t, i, &er, &ec);
      ASSERT_EQ(er, row) << "thread " << t << " value " << i;
      ASSERT_EQ(ec, col) << "thread " << t << " value " << i;
    }
}

TEST(CuteOracle, AccumulatorFragmentsMatchCute) {
  using GMMA::Major;
  check_accumulators<SM90_64x8x16_F32BF16BF16_SS<Major::K, Major::K>>(8);
  check_accumulators<SM90_64x64x16_F32BF16BF16_SS<Major::K, Major::K>>(64);
  check_accumulators<SM90_64x128x16_F32F16F16_SS<Major::K, Major::K>>(128);
  check_accumulators<SM90_64x256x16_F32BF16BF16_SS<Major::K, Major::K>>(256);
  check_accumulators<SM90_64x256x16_F32F16F16_RS<Major::K, Major::K>>(256);
}

// ALayout of the register-A wgmma: (thread, value) to an index of the column-major 64 x 16 A.
// Value e is half e % 2 of A register e / 2.
template <class Op> void check_a_fragment() {
  using A = typename MMA_Traits<Op>::ALayout;
  ASSERT_EQ(int(size<0>(A{})), 128);
  ASSERT_EQ(int(size<1>(A{})), 8);
  for (int t = 0; t < 128; ++t)
    for (int e = 0; e < 8; ++e) {
      const int idx = A{}(t, e), row = idx % 64, col = idx / 64;
      const ours::RowCol rc = ours::a_fragment_coord(t, e / 2, e % 2);
      ASSERT_EQ(rc.row, row) << "thread " << t << " element " << e;
      ASSERT_EQ(rc.col, col) << "thread " << t << " element " << e;
      int er = -1, ec = -1;
      emu::a_fragment_coord(t, e, &er, &ec);
      ASSERT_EQ(er, row) << "thread " << t << " element " << e;
      ASSERT_EQ(ec, col) << "thread " << t << " element " << e;
    }
}

TEST(CuteOracle, RegisterAFragmentsMatchCute) {
  using GMMA::Major;
  check_a_fragment<SM90_64x64x16_F32BF16BF16_RS<Major::K, Major::K>>();
  check_a_fragment<SM90_64x128x16_F32F16F16_RS<Major::K, Major::K>>();
}

} // namespace
} // namespace cute_oracle
