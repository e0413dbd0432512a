// GPU rows of flashnce_bench: for each shape (loss, dtype, n = m, d), side by side in one run on
// the same device and stream:
//   gemm          one cuBLAS GEMM A·Bᵀ of the shape, output in the input dtype (the floor)
//   fused_fwd     fnceForward                       (CUDA backend; skipped with the reason if it
//   fused_fwdbwd  fnceForward + fnceBackward         reports an error, e.g. not implemented yet)
//   naive_fwd     cuBLAS GEMM into n×m f32 + softmax/CE kernels            (bench/naive)
//   naive_fwdbwd  … + dlogits (n×m, input dtype) + two more cuBLAS GEMMs
// Timing: CUDA events around each call (UseManualTime), two warm-up calls, median of the
// repetitions.  Inputs are rotated over several copies when they are small enough to sit in L2.
// Memory: "extra" = what a method needs beyond inputs and outputs — by accounting (fused:
// workspace + LSEs; naive: logits + dlogits + scratch + LSEs) and measured with cudaMemGetInfo
// before / after the first call (allocation granularity 2 MiB; includes cuBLAS's own workspace).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#if defined(CUDA_EMU)
#include "bench/naive/cublas_emu.h" // the harness's own test under the CPU SIMT emulator
#else
#include <cublas_v2.h>
#endif

#include "bench/bench_setup.h"
#include "bench/bench_table.h"
#include "bench/naive/naive_loss.h"

namespace flashnce::bench {
namespace {

enum class Variant { Gemm, FusedFwd, FusedFwdBwd, NaiveFwd, NaiveFwdBwd };
constexpr Variant kVariants[] = {Variant::Gemm, Variant::FusedFwd, Variant::FusedFwdBwd,
                                 Variant::NaiveFwd, Variant::NaiveFwdBwd};

const char* variant_name(Variant v) {
  switch (v) {
  case Variant::Gemm:
    return "gemm";
  case Variant::FusedFwd:
    return "fused_fwd";
  case Variant::FusedFwdBwd:
    return "fused_fwdbwd";
  case Variant::NaiveFwd:
    return "naive_fwd";
  default:
    return "naive_fwdbwd";
  }
}

bool with_backward(Variant v) {
  return v == Variant::FusedFwdBwd || v == Variant::NaiveFwdBwd;
}

std::string cuda_msg(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorString(e);
}

size_t free_device_bytes() {
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  return free_b;
}

// A device allocation that frees itself.
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }
  void reset() {
    if (ptr)
      cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
  }
  bool alloc(size_t n, std::string* err, const char* what) {
    reset();
    if (n == 0)
      return true;
    const cudaError_t e = cudaMalloc(&ptr, n);
    if (e != cudaSuccess) {
      ptr = nullptr;
      cudaGetLastError(); // clear the sticky-free error state of a failed allocation
      *err = cuda_msg(what, e);
      return false;
    }
    bytes = n;
    return true;
  }
  template <typename T> T* as() const { return static_cast<T*>(ptr); }
};

// Inputs and outputs of the shape being measured; rebuilt when the shape changes (benchmarks
// are registered grouped by shape, so each shape is set up once).
struct ShapeState {
  bool valid = false;
  Shape shape{};
  int copies = 1;
  std::vector<std::unique_ptr<DeviceBuffer>> a, b; // `copies` rotated input sets
  DeviceBuffer scale, grad_loss, loss, grad_a, grad_b, gemm_out;
  std::unique_ptr<naive::NaiveLoss> naive;
  Variant naive_variant = Variant::NaiveFwd;
  size_t naive_free_before = 0; // cudaMemGetInfo's free bytes before `naive` was created
  bool naive_measured = false;
  void reset() {
    valid = false;
    a.clear();
    b.clear();
    scale.reset();
    grad_loss.reset();
    loss.reset();
    grad_a.reset();
    grad_b.reset();
    gemm_out.reset();
    naive.reset();
  }
};

struct Gpu {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  int l2_bytes = 0;
  ShapeState cur;
};

Gpu& gpu() {
  static Gpu g;
  return g;
}

bool prepare_shape(const Shape& s, std::string* err) {
  Gpu& g = gpu();
  ShapeState& c = g.cur;
  if (c.valid && c.shape.loss == s.loss && c.shape.dtype == s.dtype && c.shape.n == s.n &&
      c.shape.d == s.d)
    return true;
  c.reset();
  const bool self = is_self_mode(s.loss);
  const size_t in_bytes = size_t(s.n) * size_t(s.d) * dtype_bytes(s.dtype);
  const size_t set_bytes = in_bytes * (self ? 1 : 2);
  // Rotate over enough copies that one iteration's inputs are evicted from L2 by the next ones.
  c.copies =
      int(std::min<size_t>(8, std::max<size_t>(1, (2 * size_t(g.l2_bytes)) / set_bytes + 1)));
  const size_t need = set_bytes * c.copies + 2 * in_bytes /* grads */;
  const size_t free_b = free_device_bytes();
  if (need > free_b * 0.9) {
    *err = "inputs (" + std::to_string(need >> 20) + " MiB) do not fit in " +
           std::to_string(free_b >> 20) + " MiB free";
    return false;
  }
  std::vector<unsigned char> host(in_bytes);
  for (int k = 0; k < c.copies; ++k) {
    c.a.emplace_back(new DeviceBuffer);
    if (!c.a.back()->alloc(in_bytes, err, "cudaMalloc(a)"))
      return false;
    if (k == 0)
      fill_host_inputs(host.data(), s.n * s.d, s.dtype, 11, s.d);
    cudaMemcpy(c.a.back()->ptr, host.data(), in_bytes, cudaMemcpyHostToDevice);
  }
  if (!self) {
    for (int k = 0; k < c.copies; ++k) {
      c.b.emplace_back(new DeviceBuffer);
      if (!c.b.back()->alloc(in_bytes, err, "cudaMalloc(b)"))
        return false;
      if (k == 0)
        fill_host_inputs(host.data(), s.n * s.d, s.dtype, 22, s.d);
      cudaMemcpy(c.b.back()->ptr, host.data(), in_bytes, cudaMemcpyHostToDevice);
    }
  }
  const float scale = 1.f / 0.07f, one = 1.f;
  if (!c.scale.alloc(4, err, "cudaMalloc(scale)") || !c.grad_loss.alloc(4, err, "cudaMalloc") ||
      !c.loss.alloc(4, err, "cudaMalloc(loss)") ||
      !c.grad_a.alloc(in_bytes, err, "cudaMalloc(grad_a)") ||
      (!self && !c.grad_b.alloc(in_bytes, err, "cudaMalloc(grad_b)")))
    return false;
  cudaMemcpy(c.scale.ptr, &scale, 4, cudaMemcpyHostToDevice);
  cudaMemcpy(c.grad_loss.ptr, &one, 4, cudaMemcpyHostToDevice);
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    *err = cuda_msg("input setup", e);
    return false;
  }
  c.shape = s;
  c.valid = true;
  return true;
}

fnceLossParams params_for(const Shape& s, int copy) {
  const ShapeState& c = gpu().cur;
  fnceLossParams p;
  fnceLossParamsInit(&p);
  p.backend = FNCE_BACKEND_CUDA;
  p.dtype = s.dtype;
  p.n = p.m = s.n;
  p.d = s.d;
  p.a = c.a[copy]->ptr;
  p.b = c.b.empty() ? nullptr : c.b[copy]->ptr;
  p.logit_scale = c.scale.as<float>();
  configure_loss(&p, s.loss);
  return p;
}

// Times `call(copy)` with CUDA events, one sample per iteration; skips on the first error.
template <typename Call>
void timed_loop(benchmark::State& st, int copies, double flop, Call&& call) {
  Gpu& g = gpu();
  for (int w = 0; w < 2; ++w) { // warm-up (cuBLAS heuristics, first-launch costs)
    const std::string e = call(w % copies);
    if (!e.empty()) {
      st.SkipWithError(e.c_str());
      return;
    }
  }
  cudaStreamSynchronize(g.stream);
  double total_s = 0;
  int64_t it = 0;
  for (auto _ : st) {
    cudaEventRecord(g.start, g.stream);
    const std::string e = call(int(it % copies));
    cudaEventRecord(g.stop, g.stream);
    const cudaError_t ce = cudaEventSynchronize(g.stop);
    if (!e.empty() || ce != cudaSuccess) {
      st.SkipWithError((e.empty() ? cuda_msg("kernel", ce) : e).c_str());
      break;
    }
    float ms = 0;
    cudaEventElapsedTime(&ms, g.start, g.stop);
    st.SetIterationTime(ms * 1e-3);
    total_s += ms * 1e-3;
    ++it;
  }
  if (it > 0 && total_s > 0)
    st.counters["TFLOP/s"] = flop * double(it) / total_s / 1e12;
}

std::string fnce_error(const char* what, fnceStatus_t st) {
  return std::string(what) + ": " + fnceGetStatusString(st) + ": " + fnceGetLastErrorMessage();
}

void run_gemm(benchmark::State& st, const Shape& s, const std::string& name) {
  Gpu& g = gpu();
  ShapeState& c = g.cur;
  const size_t out_bytes = size_t(s.n) * size_t(s.n) * dtype_bytes(s.dtype);
  if (!c.gemm_out.ptr) {
    std::string err;
    if (out_bytes > free_device_bytes() * 0.9) {
      st.SkipWithError(
          ("GEMM output (" + std::to_string(out_bytes >> 20) + " MiB) does not fit").c_str());
      return;
    }
    if (!c.gemm_out.alloc(out_bytes, &err, "cudaMalloc(gemm output)")) {
      st.SkipWithError(err.c_str());
      return;
    }
  }
  set_memory(name, double(out_bytes), -1);
  const cudaDataType_t t =
      s.dtype == FNCE_F32 ? CUDA_R_32F : (s.dtype == FNCE_F16 ? CUDA_R_16F : CUDA_R_16BF);
  cublasSetStream(g.blas, g.stream);
  timed_loop(st, c.copies, gemm_flop(s.n, s.n, s.d), [&](int k) -> std::string {
    const void* a = c.a[k]->ptr;
    const void* b = c.b.empty() ? a : c.b[k]->ptr;
    const float one = 1.f, zero = 0.f;
    // Row-major C (n×m) = A·Bᵀ: column-major m×n = (B as d×m)ᵀ·(A as d×n).
    const cublasStatus_t r = cublasGemmEx(
        g.blas, CUBLAS_OP_T, CUBLAS_OP_N, int(s.n), int(s.n), int(s.d), &one, b, t, int(s.d), a, t,
        int(s.d), &zero, c.gemm_out.ptr, t, int(s.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return r == CUBLAS_STATUS_SUCCESS ? "" : "cublasGemmEx failed (" + std::to_string(r) + ")";
  });
  st.counters["extra_MiB"] = double(out_bytes) / 1048576.0;
}

void run_fused(benchmark::State& st, const Shape& s, bool bwd, const std::string& name) {
  Gpu& g = gpu();
  ShapeState& c = g.cur;
  fnceLossParams p = params_for(s, 0);
  const bool sym = p.direction == FNCE_DIRECTION_SYMMETRIC;
  size_t fw = 0, bw = 0;
  fnceStatus_t r = fnceForwardWorkspaceSize(&p, &fw);
  if (r == FNCE_SUCCESS && bwd)
    r = fnceBackwardWorkspaceSize(&p, &bw);
  if (r != FNCE_SUCCESS) {
    st.SkipWithError(fnce_error("fused workspace query", r).c_str());
    return;
  }
  const size_t before = free_device_bytes();
  DeviceBuffer ws, row_lse, col_lse;
  std::string err;
  if (!ws.alloc(std::max(fw, bw), &err, "cudaMalloc(workspace)") ||
      !row_lse.alloc(size_t(s.n) * 4, &err, "cudaMalloc(row_lse)") ||
      (sym && !col_lse.alloc(size_t(s.n) * 4, &err, "cudaMalloc(col_lse)"))) {
    st.SkipWithError(err.c_str());
    return;
  }
  bool measured = false;
  const double accounted = double(std::max(fw, bw)) + double(s.n) * 4 * (sym ? 2 : 1);
  timed_loop(st, c.copies, gemm_flop(s.n, s.n, s.d) * (bwd ? 3 : 1), [&](int k) -> std::string {
    const fnceLossParams q = params_for(s, k);
    fnceStatus_t e = fnceForward(&q, c.loss.as<float>(), row_lse.as<float>(), col_lse.as<float>(),
                                 ws.ptr, ws.bytes, g.stream);
    if (e != FNCE_SUCCESS)
      return fnce_error("fnceForward (CUDA backend)", e);
    if (bwd) {
      e = fnceBackward(&q, row_lse.as<float>(), col_lse.as<float>(), c.grad_loss.as<float>(),
                       c.grad_a.ptr, q.b ? c.grad_b.ptr : nullptr, nullptr, ws.ptr, ws.bytes,
                       g.stream);
      if (e != FNCE_SUCCESS)
        return fnce_error("fnceBackward (CUDA backend)", e);
    }
    if (!measured) {
      cudaStreamSynchronize(g.stream);
      set_memory(name, accounted, double(before) - double(free_device_bytes()));
      measured = true;
    }
    return "";
  });
  st.counters["extra_MiB"] = accounted / 1048576.0; // workspace + LSEs
}

void run_naive(benchmark::State& st, const Shape& s, Variant v, const std::string& name) {
  Gpu& g = gpu();
  ShapeState& c = g.cur;
  const bool bwd = with_backward(v);
  const naive::Footprint f = naive::footprint(s.n, s.n, s.dtype, bwd);
  const fnceLossParams p0 = params_for(s, 0);
  const bool sym = p0.direction == FNCE_DIRECTION_SYMMETRIC;
  const double lse_bytes = double(s.n) * 4 * (sym ? 2 : 1);
  // A fresh NaiveLoss per variant, so that its allocations can be measured.
  if (!c.naive || c.naive_variant != v) {
    c.naive.reset();
    const size_t before = free_device_bytes();
    if (f.total() + size_t(lse_bytes) > before * 0.9) {
      st.SkipWithError(("naive n×m footprint " + std::to_string(f.total() >> 20) +
                        " MiB does not fit in " + std::to_string(before >> 20) + " MiB free")
                           .c_str());
      return;
    }
    c.naive.reset(new naive::NaiveLoss);
    c.naive_variant = v;
    c.naive_free_before = before;
    c.naive_measured = false;
    const fnceStatus_t r = c.naive->reserve(s.n, s.n, s.dtype, bwd);
    if (r != FNCE_SUCCESS) {
      st.SkipWithError(c.naive->last_error().c_str());
      c.naive.reset();
      return;
    }
  }
  naive::NaiveLoss& nl = *c.naive;
  DeviceBuffer row_lse, col_lse;
  std::string err;
  if (!row_lse.alloc(size_t(s.n) * 4, &err, "cudaMalloc(row_lse)") ||
      (sym && !col_lse.alloc(size_t(s.n) * 4, &err, "cudaMalloc(col_lse)"))) {
    st.SkipWithError(err.c_str());
    return;
  }
  const double accounted = double(f.total()) + lse_bytes;
  timed_loop(st, c.copies, gemm_flop(s.n, s.n, s.d) * (bwd ? 3 : 1), [&](int k) -> std::string {
    const fnceLossParams q = params_for(s, k);
    fnceStatus_t e =
        nl.forward(q, c.loss.as<float>(), row_lse.as<float>(), col_lse.as<float>(), g.stream);
    if (e != FNCE_SUCCESS)
      return "naive forward: " + nl.last_error();
    if (bwd) {
      e = nl.backward(q, row_lse.as<float>(), col_lse.as<float>(), c.grad_loss.as<float>(),
                      c.grad_a.ptr, q.b ? c.grad_b.ptr : nullptr, nullptr, g.stream);
      if (e != FNCE_SUCCESS)
        return "naive backward: " + nl.last_error();
    }
    if (!c.naive_measured) {
      // Free memory before the object was created minus now: its matrices and scratch, the
      // LSEs, and the workspace cuBLAS allocated at its first call.
      cudaStreamSynchronize(g.stream);
      set_memory(name, accounted, double(c.naive_free_before) - double(free_device_bytes()));
      c.naive_measured = true;
    }
    return "";
  });
  st.counters["extra_MiB"] = accounted / 1048576.0; // logits + dlogits + scratch + LSEs
}

void run_variant(benchmark::State& st, Shape s, Variant v, std::string name) {
  std::string err;
  if (!prepare_shape(s, &err)) {
    st.SkipWithError(err.c_str());
    return;
  }
  switch (v) {
  case Variant::Gemm:
    run_gemm(st, s, name);
    break;
  case Variant::FusedFwd:
    run_fused(st, s, false, name);
    break;
  case Variant::FusedFwdBwd:
    run_fused(st, s, true, name);
    break;
  default:
    run_naive(st, s, v, name);
    break;
  }
}

} // namespace

bool register_gpu_benchmarks(const Options& o, std::string* why_not) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    *why_not = e != cudaSuccess ? cuda_msg("no usable CUDA device (cudaGetDeviceCount)", e)
                                : std::string("no CUDA device");
    cudaGetLastError();
    return false;
  }
  Gpu& g = gpu();
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  g.l2_bytes = prop.l2CacheSize;
  if (cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaEventCreate(&g.start) != cudaSuccess || cudaEventCreate(&g.stop) != cudaSuccess ||
      cublasCreate(&g.blas) != CUBLAS_STATUS_SUCCESS) {
    *why_not = "could not create a stream, events or a cuBLAS handle";
    return false;
  }
  std::printf("GPU: %s (sm_%d%d, %.1f GiB, L2 %.0f MiB)\n", prop.name, prop.major, prop.minor,
              double(prop.totalGlobalMem) / (1 << 30), double(prop.l2CacheSize) / (1 << 20));
  for (const Shape& s : gpu_shapes(o)) {
    for (Variant v : kVariants) {
      const std::string name = std::string(loss_name(s.loss)) + "/" + dtype_name(s.dtype) +
                               "/n:" + std::to_string(s.n) + "/d:" + std::to_string(s.d) + "/" +
                               variant_name(v);
      Row row;
      row.loss = loss_name(s.loss);
      row.dtype = dtype_name(s.dtype);
      row.n = row.m = s.n;
      row.d = s.d;
      row.variant = variant_name(v);
      row.flop = gemm_flop(s.n, s.n, s.d) * (with_backward(v) ? 3 : 1);
      describe(name, row);
      auto* b = benchmark::RegisterBenchmark(
          name.c_str(), [s, v, name](benchmark::State& st) { run_variant(st, s, v, name); });
      b->UseManualTime()->Unit(benchmark::kMillisecond)->ReportAggregatesOnly(true);
      if (!o.user_repetitions)
        b->Repetitions(3);
      if (!o.user_min_time)
        b->MinTime(0.05);
    }
  }
  return true;
}

} // namespace flashnce::bench
