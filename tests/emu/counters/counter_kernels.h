// Declarations of the counter test kernels (counter_kernels.cu).
#pragma once

#include <cuda_runtime.h>

__global__ void transpose_kernel(const float* in, float* out, int ld);
__global__ void strided_copy_kernel(const float* in, float* out, int stride);
__global__ void wide_smem_kernel(unsigned long long* out, int stride);
__global__ void mma_ldmatrix_kernel(float* out, int ld);
__global__ void cp_async_kernel(const float* in, float* out);
