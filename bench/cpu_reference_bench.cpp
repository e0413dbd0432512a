// CPU rows: the f64 reference (FNCE_BACKEND_CPU) on small shapes, and the host backend
// (FNCE_BACKEND_HOST: f32 blocks through BLAS, OpenMP threads) on training-sized ones (rows
// host_fwd / host_fwdbwd; bench/torch_baseline.py --device cpu puts the naive PyTorch CPU loss
// next to them in one run).  These rows say nothing about GPU speed; they keep the harness
// building and running on machines without a GPU.
#include <cstdio>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/bench_setup.h"
#include "bench/bench_table.h"

namespace flashnce::bench {
namespace {

struct HostProblem {
  std::vector<unsigned char> a, b, grad_a, grad_b;
  std::vector<float> row_lse, col_lse;
  float scale = 1.f / 0.07f, loss = 0.f, grad_loss = 1.f, grad_scale = 0.f;
  fnceLossParams p;

  std::vector<unsigned char> workspace;
  size_t ws_bytes = 0;

  HostProblem(const Shape& s, fnceBackend_t backend) {
    fnceLossParamsInit(&p);
    p.backend = backend;
    p.dtype = s.dtype;
    p.n = p.m = s.n;
    p.d = s.d;
    const size_t bytes = size_t(s.n) * size_t(s.d) * dtype_bytes(s.dtype);
    a.resize(bytes);
    b.resize(bytes);
    grad_a.resize(bytes);
    grad_b.resize(bytes);
    fill_host_inputs(a.data(), s.n * s.d, s.dtype, 1, s.d);
    fill_host_inputs(b.data(), s.n * s.d, s.dtype, 2, s.d);
    p.a = a.data();
    p.b = b.data();
    p.logit_scale = &scale;
    configure_loss(&p, s.loss); // NT-Xent sets b = NULL
    row_lse.resize(s.n);
    col_lse.resize(s.n);
    size_t f = 0, b_ = 0;
    if (fnceForwardWorkspaceSize(&p, &f) == FNCE_SUCCESS &&
        fnceBackwardWorkspaceSize(&p, &b_) == FNCE_SUCCESS) {
      ws_bytes = f > b_ ? f : b_;
      workspace.resize(ws_bytes);
    }
  }
  void* ws() { return ws_bytes ? workspace.data() : nullptr; }
  float* col() { return p.direction == FNCE_DIRECTION_SYMMETRIC ? col_lse.data() : nullptr; }
  fnceStatus_t forward() {
    return fnceForward(&p, &loss, row_lse.data(), col(), ws(), ws_bytes, nullptr);
  }
  fnceStatus_t backward() {
    return fnceBackward(&p, row_lse.data(), col(), &grad_loss, grad_a.data(),
                        p.b ? grad_b.data() : nullptr, &grad_scale, ws(), ws_bytes, nullptr);
  }
};

void run_cpu(benchmark::State& state, Shape s, bool with_backward, fnceBackend_t backend) {
  HostProblem h(s, backend);
  for (auto _ : state) {
    fnceStatus_t st = h.forward();
    if (st == FNCE_SUCCESS && with_backward)
      st = h.backward();
    if (st != FNCE_SUCCESS) {
      state.SkipWithError((std::string(backend == FNCE_BACKEND_CPU ? "CPU reference: " : "host: ") +
                           fnceGetStatusString(st) + ": " +
                           fnceGetLastErrorMessage())
                              .c_str());
      break;
    }
    // (No DoNotOptimize(h.loss): with GCC, Google Benchmark 1.7's "+m,r" constraint may
    // corrupt the value; the call into the library cannot be optimised away anyway.)
    benchmark::ClobberMemory();
  }
  state.counters["loss"] = h.loss; // a sanity value: finite, a few units for these inputs
}

} // namespace

void register_cpu_benchmarks(const Options& o) {
  for (fnceBackend_t backend : {FNCE_BACKEND_CPU, FNCE_BACKEND_HOST})
  for (const Shape& s : backend == FNCE_BACKEND_CPU ? cpu_shapes(o) : host_shapes(o)) {
    for (bool bwd : {false, true}) {
      const char* prefix = backend == FNCE_BACKEND_CPU ? "cpu" : "host";
      const std::string variant = std::string(prefix) + (bwd ? "_fwdbwd" : "_fwd");
      const std::string name = std::string(loss_name(s.loss)) + "/" + dtype_name(s.dtype) +
                               "/n:" + std::to_string(s.n) + "/d:" + std::to_string(s.d) + "/" +
                               variant;
      Row row;
      row.loss = loss_name(s.loss);
      row.dtype = dtype_name(s.dtype);
      row.n = row.m = s.n;
      row.d = s.d;
      row.variant = variant;
      row.flop = gemm_flop(s.n, s.n, s.d) * (bwd ? 3 : 1);
      row.extra_bytes = backend == FNCE_BACKEND_CPU ? 0 : HostProblem(s, backend).ws_bytes;
      describe(name, row);
      auto* b = benchmark::RegisterBenchmark(name.c_str(), [s, bwd, backend](benchmark::State& st) {
        run_cpu(st, s, bwd, backend);
      });
      b->Unit(benchmark::kMillisecond);
      if (backend == FNCE_BACKEND_HOST && !o.smoke)
        b->MinTime(0.5)->Repetitions(3)->ReportAggregatesOnly(true); // median of 3
      if (o.smoke)
        b->Iterations(1);
    }
  }
}

} // namespace flashnce::bench
