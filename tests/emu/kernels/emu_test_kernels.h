// Host-side entry points of the emulator's test kernels (kernels/*.cu).  The .cu files are
// standard CUDA: nvcc compiles them as they are, and the test suite compiles them with the host
// compiler after cuda_emu.h.  Every entry point launches with cudaLaunchKernelEx (or
// cudaLaunchKernel) and returns the launch's error; pointers are device pointers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace emu_test {

// ---- basic_kernels.cu -----------------------------------------------------------------------
/// out[b] = sum of in[b*per_block .. (b+1)*per_block) by a shared-memory tree (threads: 2^k).
cudaError_t block_reduce(const float* in, float* out, int per_block, int blocks, int threads);
/// out = transpose(in), in: rows x cols, through a 32x33 static shared tile, 32x8 threads.
cudaError_t transpose(const float* in, float* out, int rows, int cols);
/// Per warp segment of `width` lanes, for every shuffle kind (one row of 32 ints per kind):
///   out[0*32+l]: inclusive scan with __shfl_up_sync
///   out[1*32+l]: suffix sum (inclusive, towards higher lanes) with __shfl_down_sync
///   out[2*32+l]: segment sum by butterfly with __shfl_xor_sync
///   out[3*32+l]: the value of segment lane (l*5+3) mod width with __shfl_sync
///   out[4*32+l]: the same with srcLane + 7*width (wraps modulo width)
/// for in[l] (32 values), one warp.
cudaError_t warp_shuffles(const int* in, int* out, int width);
/// out[0..3] = __ballot_sync(pred), __any_sync, __all_sync, __activemask for pred = in[lane] > 0,
/// out[4..6] = __syncthreads_count/and/or over the block (pred = in[tid] > 0), 64 threads.
cudaError_t votes(const int* in, unsigned* out);
/// One warp whose halves branch apart: each half sums its 16 values with __shfl_xor_sync on its
/// own mask (sums[lane] = its half's sum) and ballots in[lane] odd (ballots[lane]).
cudaError_t half_warp_collectives(const int* in, int* sums, unsigned* ballots);
/// Every thread of a 3-D grid of 3-D blocks writes its global linear id at its own position.
cudaError_t grid_indices(unsigned* out, dim3 grid, dim3 block);
/// Histogram of in[0..n) values (0..bins-1) with shared atomicAdd, merged by global atomicAdd;
/// also global atomicMax/atomicMin/atomicCAS/atomicExch/float atomicAdd into stats[0..4].
cudaError_t atomics(const int* in, int n, int bins, unsigned* hist, int* stats, float* fsum);
/// out[b] = sum over the block's dynamic shared buffer of `floats` floats filled with in[...].
cudaError_t dynamic_smem_sum(const float* in, float* out, int floats, int blocks);
/// As dynamic_smem_sum, but the buffer size needs cudaFuncSetAttribute above 48 KB first when
/// `opt_in` (the limit is set to `floats` * 4 bytes).
cudaError_t dynamic_smem_sum_opt_in(const float* in, float* out, int floats, int blocks,
                                    bool opt_in);
/// Reads a dynamic shared buffer without writing it: out[i] = bit pattern of word i.
cudaError_t read_uninitialised_smem(unsigned* out, int words);
/// Same kernel launched through the C API cudaLaunchKernel(const void*, ..., void** args).
cudaError_t block_reduce_c_api(const float* in, float* out, int per_block, int blocks, int threads);
/// data[i] *= factor through the C API cudaLaunchKernel(const void*, ...) only; when
/// `query_attributes_first`, cudaFuncGetAttributes(kernel) is called before.
cudaError_t scale_c_api(float* data, float factor, int n, bool query_attributes_first);
/// A kernel without parameters: each of `blocks` blocks of 64 threads adds sum over threads of
/// weights[tid % 4] (a __constant__ array) to a __device__ counter; *counter (host) = the total.
cudaError_t symbols(const float (&weights)[4], int blocks, int* counter);

} // namespace emu_test

namespace emu_test {

// ---- tensor_core_kernels.cu -----------------------------------------------------------------
enum class GemmType { bf16, f16 };
/// C (64x64 f32, row-major) = A (64x64, row-major) * B (64x64 K x N, row-major), 16-bit inputs
/// given as raw bits, one block of 4 warps: ldmatrix.x4 for A, ldmatrix.x2.trans for B,
/// mma.m16n8k16.  `swap_fragments` deliberately exchanges A registers 1 and 2 (a fragment bug).
cudaError_t gemm64_16bit(GemmType type, const std::uint16_t* a, const std::uint16_t* b, float* c,
                         bool swap_fragments);
/// The same product with f32 inputs on mma.m16n8k8.tf32 (fragments loaded element by element).
cudaError_t gemm64_tf32(const float* a, const float* b, float* c);
/// out[i] = float_to_tf32(in[i]) (bit patterns), n values, 128 threads per block.
cudaError_t to_tf32(const float* in, std::uint32_t* out, int n);
/// One warp: the 4 8x8 b16 matrices `m` (256 values, matrix-major, row-major) go to shared
/// memory; out[v][reg][lane] receives register `reg` of lane `lane` for the variants
/// v = x1, x2, x4, x1.trans, x2.trans, x4.trans (unused registers stay 0).
cudaError_t ldmatrix_layouts(const std::uint16_t* m, std::uint32_t* out);

// ---- cp_async_kernels.cu --------------------------------------------------------------------
/// out[i] = 2 * in[i] for n floats, through a double-buffered cp.async pipeline in dynamic shared
/// memory (stages of 512 floats, 128 threads, 16-byte copies, zero-fill past n).  `copy_bytes`
/// selects 16-, 8- or 4-byte copies.
cudaError_t cp_async_double_buffer(const float* in, float* out, int n, int copy_bytes);
/// Issues cp.async copies and reads the destination WITHOUT waiting: out receives what the
/// buffer held before the copies (the emulator performs them at the wait).
cudaError_t cp_async_read_before_wait(const float* in, float* out, int n);
/// Zero-fill: each thread copies src_bytes (0..16) of 16 and the rest of out's 16 bytes is zero.
cudaError_t cp_async_zfill(const float* in, float* out, int src_bytes);

// ---- bug_kernels.cu (each of these aborts under the emulator) -------------------------------
cudaError_t divergent_barrier(int* out);
/// Writes out[0..n] (one float past a buffer of n) from one block of n + 1 threads.
cudaError_t global_overrun(float* out, int n);
cudaError_t shuffle_mask_excludes_caller(int* out);
cudaError_t shuffle_mask_names_exited_lane(int* out);
cudaError_t dynamic_smem_overrun(float* out);
cudaError_t ldmatrix_misaligned(std::uint32_t* out);
cudaError_t mma_in_partial_warp(float* out);
cudaError_t warp_collectives_diverge(int* out);

// ---- speed_kernels.cu -----------------------------------------------------------------------
/// `blocks` blocks of `threads` threads, each crossing `barriers` __syncthreads and `shuffles`
/// warp shuffles; out[block] = a checksum.
cudaError_t barrier_storm(int* out, int blocks, int threads, int barriers, int shuffles);

// ---- order_kernels.cu ------------------------------------------------------------------------
/// order[k] = index of the k-th block to run (counter must start at 0), 32 threads per block.
cudaError_t block_order(unsigned* counter, unsigned* order, int blocks);
/// first[k] / second[k] = the k-th thread of one block to pass a point before / after a barrier.
cudaError_t thread_order(unsigned* first, unsigned* second, int threads);

} // namespace emu_test
