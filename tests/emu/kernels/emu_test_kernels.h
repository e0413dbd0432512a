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

} // namespace emu_test
