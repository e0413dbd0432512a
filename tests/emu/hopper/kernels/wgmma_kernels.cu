// Test kernels for the wgmma wrappers (kernels/common/wgmma.cuh) on TMA-loaded, swizzled tiles:
// a warp-specialised GEMM (producer warpgroup with TMA and a full/empty mbarrier ring, consumer
// warpgroups with wgmma, setmaxnreg between them) and the stale-accumulator probe.  Standard CUDA
// for sm_90a.
#include "hopper_kernels.h"

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/common/tensor_map.h"
#include "kernels/common/tma.cuh"
#include "kernels/common/warpgroup.cuh"
#include "kernels/common/wgmma.cuh"

#include <cmath>

namespace emu_hopper {
namespace {

using namespace flashnce::kernels;

constexpr int kStages = 2;

CUtensorMapSwizzle map_swizzle(gmma::Swizzle s) {
  return s == gmma::Swizzle::b128  ? CU_TENSOR_MAP_SWIZZLE_128B
         : s == gmma::Swizzle::b64 ? CU_TENSOR_MAP_SWIZZLE_64B
         : s == gmma::Swizzle::b32 ? CU_TENSOR_MAP_SWIZZLE_32B
                                   : CU_TENSOR_MAP_SWIZZLE_NONE;
}

__device__ unsigned char* align_1024(unsigned char* p) {
  const std::uint32_t a = wgmma_smem_address(p);
  return p + (1024u - a % 1024u) % 1024u;
}

// Shared-memory geometry of one stage: A (M rows) then B (N rows), each a K-major tile of `kt`
// elements per row: with a swizzle S one TMA box of S-byte rows (kt = S/2); without, two boxes of
// 16-byte rows (k 0..7 and 8..15, kt = 16), i.e. 8x16-byte core matrices.
struct Geometry {
  int span, kt, m, n;
  __host__ __device__ int a_bytes() const { return m * kt * 2; }
  __host__ __device__ int b_bytes() const { return n * kt * 2; }
  __host__ __device__ int stage_bytes() const { return a_bytes() + b_bytes(); }
};

// Descriptor of the 64 x 16 (or N x 16) slice kk of a tile whose rows start at `rows`.
__device__ std::uint64_t slice_descriptor(const unsigned char* tile, int row0, int tile_rows,
                                          int kk, const Geometry& g, gmma::Swizzle s) {
  const std::uint32_t base = wgmma_smem_address(tile);
  if (g.span == 0) // core matrices: next 8 rows 128 bytes on, k 8..15 a whole box (rows x 16) on
    return gmma::k_major_interleaved_descriptor(base + static_cast<std::uint32_t>(row0 * 16),
                                                static_cast<std::uint32_t>(tile_rows * 16), 128);
  return gmma::k_major_swizzled_descriptor(
      base + static_cast<std::uint32_t>(row0 * g.span + kk * 32), s);
}

// A fragment (4 registers) of slice kk for warpgroup thread t, read from the tile as the TMA laid
// it out (swizzled addresses).
__device__ void load_a_fragment(std::uint32_t (&a)[4], const unsigned char* tile, int row0,
                                int tile_rows, int kk, const Geometry& g, gmma::Swizzle s, int t) {
  const std::uint32_t base = wgmma_smem_address(tile);
  for (int r = 0; r < 4; ++r) {
    std::uint32_t v = 0;
    for (int h = 0; h < 2; ++h) {
      const gmma::RowCol rc = gmma::a_fragment_coord(t, r, h);
      const int row = row0 + rc.row, k = kk * 16 + rc.col;
      const std::uint32_t off =
          g.span == 0
              ? static_cast<std::uint32_t>((k / 8) * tile_rows * 16 + row * 16 + (k % 8) * 2)
              : static_cast<std::uint32_t>(row * g.span + k * 2);
      const std::uint32_t at = gmma::swizzle_address(base + off, s);
      const std::uint16_t bits = *reinterpret_cast<const std::uint16_t*>(tile + (at - base));
      v |= static_cast<std::uint32_t>(bits) << (16 * h);
    }
    a[r] = v;
  }
}

template <WgmmaType T, int N>
__global__ void __launch_bounds__(384, 1)
    wgmma_gemm_kernel(const __grid_constant__ CUtensorMap a_map,
                      const __grid_constant__ CUtensorMap b_map, float* c, int k_tiles, int span,
                      int consumers, int a_regs, int wrong) {
  const Geometry g{span, span == 0 ? 16 : span / 2, 64 * consumers, N};
  const auto s = static_cast<gmma::Swizzle>(span);
  const auto desc_s = wrong ? gmma::Swizzle::b64 : s;
  unsigned char* smem = align_1024(dynamic_shared_memory<unsigned char>());
  auto* full = reinterpret_cast<std::uint64_t*>(smem + kStages * g.stage_bytes());
  std::uint64_t* empty = full + kStages;
  const int wg = static_cast<int>(threadIdx.x) / 128;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kStages; ++i) {
      mbarrier_init(&full[i], 1);
      mbarrier_init(&empty[i], static_cast<unsigned>(4 * consumers));
    }
    fence_mbarrier_init();
  }
  __syncthreads();
  if (wg == 0) { // producer warpgroup: one thread issues the copies
    setmaxnreg_dec<40>();
    if (threadIdx.x == 0) {
      for (int t = 0; t < k_tiles; ++t) {
        const int st = t % kStages, round = t / kStages;
        if (round > 0)
          mbarrier_wait_parity(&empty[st], static_cast<unsigned>(round - 1) & 1u);
        mbarrier_arrive_expect_tx(&full[st], static_cast<std::uint32_t>(g.stage_bytes()));
        unsigned char* A = smem + st * g.stage_bytes();
        unsigned char* B = A + g.a_bytes();
        if (span == 0) {
          tma_load_2d(A, &a_map, t * 16, 0, &full[st]);
          tma_load_2d(A + g.m * 16, &a_map, t * 16 + 8, 0, &full[st]);
          tma_load_2d(B, &b_map, t * 16, 0, &full[st]);
          tma_load_2d(B + g.n * 16, &b_map, t * 16 + 8, 0, &full[st]);
        } else {
          tma_load_2d(A, &a_map, t * g.kt, 0, &full[st]);
          tma_load_2d(B, &b_map, t * g.kt, 0, &full[st]);
        }
      }
    }
    return;
  }
  setmaxnreg_inc<232>();
  const int cw = wg - 1, t = static_cast<int>(threadIdx.x) % 128;
  float d[N / 2];
  for (int i = 0; i < N / 2; ++i)
    d[i] = NAN; // never read: the first wgmma has scale-d 0
  for (int kt = 0; kt < k_tiles; ++kt) {
    const int st = kt % kStages, round = kt / kStages;
    mbarrier_wait_parity(&full[st], static_cast<unsigned>(round) & 1u);
    const unsigned char* A = smem + st * g.stage_bytes();
    const unsigned char* B = A + g.a_bytes();
    std::uint32_t af[4][4];
    if (a_regs)
      for (int kk = 0; kk < g.kt / 16; ++kk)
        load_a_fragment(af[kk], A, 64 * cw, g.m, kk, g, s, t);
    wgmma_fence_operand(d);
    wgmma_fence();
    for (int kk = 0; kk < g.kt / 16; ++kk) {
      const std::uint64_t db = slice_descriptor(B, 0, g.n, kk, g, desc_s);
      const int scale_d = (kt > 0 || kk > 0) ? 1 : 0;
      if (a_regs)
        wgmma_rs<N, T>(d, af[kk], db, scale_d);
      else
        wgmma_ss<N, T>(d, slice_descriptor(A, 64 * cw, g.m, kk, g, desc_s), db, scale_d);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_fence_operand(d);
    if (threadIdx.x % 32 == 0)
      mbarrier_arrive(&empty[st]); // this warp's wgmmas no longer read the stage
  }
  for (int i = 0; i < N / 2; ++i) {
    const gmma::RowCol rc = gmma::accumulator_coord(t, i);
    c[(64 * cw + rc.row) * N + rc.col] = d[i];
  }
}

__global__ void wgmma_stale_kernel(const __grid_constant__ CUtensorMap a_map,
                                   const __grid_constant__ CUtensorMap b_map, float* before,
                                   float* after) {
  unsigned char* smem = align_1024(dynamic_shared_memory<unsigned char>());
  auto* bar = reinterpret_cast<std::uint64_t*>(smem + 2 * 8192);
  if (threadIdx.x == 0) {
    mbarrier_init(bar, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    mbarrier_arrive_expect_tx(bar, 2 * 8192);
    tma_load_2d(smem, &a_map, 0, 0, bar);
    tma_load_2d(smem + 8192, &b_map, 0, 0, bar);
  }
  mbarrier_wait_parity(bar, 0);
  const int t = static_cast<int>(threadIdx.x);
  float d[32];
  for (int i = 0; i < 32; ++i)
    d[i] = 1.0f;
  wgmma_fence();
  wgmma_ss<64, WgmmaType::bf16>(d, wgmma_desc_k_major(smem, gmma::Swizzle::b128),
                                wgmma_desc_k_major(smem + 8192, gmma::Swizzle::b128), 1);
  wgmma_commit();
  for (int i = 0; i < 32; ++i) { // too early: the group has not been waited for
    const gmma::RowCol rc = gmma::accumulator_coord(t, i);
    before[rc.row * 64 + rc.col] = d[i];
  }
  wgmma_wait<0>();
  for (int i = 0; i < 32; ++i) {
    const gmma::RowCol rc = gmma::accumulator_coord(t, i);
    after[rc.row * 64 + rc.col] = d[i];
  }
}

cudaError_t make_map(CUtensorMap* map, InputType type, const std::uint16_t* p, int cols, int rows,
                     int box_cols, gmma::Swizzle s) {
  return make_tensor_map_2d(
      map,
      type == InputType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
      p, static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows),
      static_cast<std::uint64_t>(cols) * 2, static_cast<std::uint32_t>(box_cols),
      static_cast<std::uint32_t>(rows), map_swizzle(s));
}

template <WgmmaType T, int N>
cudaError_t launch_gemm(const GemmConfig& cfg, const CUtensorMap& am, const CUtensorMap& bm,
                        float* c, int k_tiles) {
  const int span = static_cast<int>(cfg.swizzle);
  const Geometry g{span, span == 0 ? 16 : span / 2, 64 * cfg.consumers, N};
  cudaLaunchConfig_t lc{};
  lc.gridDim = dim3(1);
  lc.blockDim = dim3(static_cast<unsigned>(128 * (1 + cfg.consumers)));
  lc.dynamicSmemBytes = static_cast<std::size_t>(kStages * g.stage_bytes() + 64 + 1024);
  cudaError_t e =
      cudaFuncSetAttribute(wgmma_gemm_kernel<T, N>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(lc.dynamicSmemBytes));
  if (e != cudaSuccess)
    return e;
  return cudaLaunchKernelEx(&lc, wgmma_gemm_kernel<T, N>, am, bm, c, k_tiles, span, cfg.consumers,
                            cfg.a_from_registers ? 1 : 0, cfg.wrong_descriptor ? 1 : 0);
}

template <WgmmaType T>
cudaError_t launch_gemm_n(const GemmConfig& cfg, const CUtensorMap& am, const CUtensorMap& bm,
                          float* c, int k_tiles) {
  switch (cfg.n) {
  case 64:
    return launch_gemm<T, 64>(cfg, am, bm, c, k_tiles);
  case 128:
    return launch_gemm<T, 128>(cfg, am, bm, c, k_tiles);
  case 256:
    return launch_gemm<T, 256>(cfg, am, bm, c, k_tiles);
  default:
    return cudaErrorInvalidValue;
  }
}

} // namespace

cudaError_t wgmma_gemm(const GemmConfig& cfg, const std::uint16_t* a, const std::uint16_t* b,
                       float* c, int k) {
  const int span = static_cast<int>(cfg.swizzle);
  const int kt = span == 0 ? 16 : span / 2;
  if (k % 128 != 0 || cfg.consumers < 1 || cfg.consumers > 2)
    return cudaErrorInvalidValue;
  alignas(128) CUtensorMap am, bm;
  const int box = span == 0 ? 8 : kt;
  cudaError_t e = make_map(&am, cfg.type, a, k, 64 * cfg.consumers, box, cfg.swizzle);
  if (e == cudaSuccess)
    e = make_map(&bm, cfg.type, b, k, cfg.n, box, cfg.swizzle);
  if (e != cudaSuccess)
    return e;
  return cfg.type == InputType::bf16 ? launch_gemm_n<WgmmaType::bf16>(cfg, am, bm, c, k / kt)
                                     : launch_gemm_n<WgmmaType::f16>(cfg, am, bm, c, k / kt);
}

cudaError_t wgmma_stale(const std::uint16_t* a, const std::uint16_t* b, float* before,
                        float* after) {
  alignas(128) CUtensorMap am, bm;
  cudaError_t e = make_map(&am, InputType::bf16, a, 64, 64, 64, gmma::Swizzle::b128);
  if (e == cudaSuccess)
    e = make_map(&bm, InputType::bf16, b, 64, 64, 64, gmma::Swizzle::b128);
  if (e != cudaSuccess)
    return e;
  cudaLaunchConfig_t lc{};
  lc.gridDim = dim3(1);
  lc.blockDim = dim3(128);
  lc.dynamicSmemBytes = 2 * 8192 + 8 + 1024;
  return cudaLaunchKernelEx(&lc, wgmma_stale_kernel, am, bm, before, after);
}

} // namespace emu_hopper
