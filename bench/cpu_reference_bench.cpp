// CPU rows: the f64 reference (FNCE_BACKEND_CPU) on small shapes.  These rows say nothing about
// GPU speed; they keep the harness building and running on machines without a GPU, and show the
// cost of the oracle the tests use.
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

  explicit HostProblem(const Shape& s) {
    fnceLossParamsInit(&p);
    p.backend = FNCE_BACKEND_CPU;
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
  }
  float* col() { return p.direction == FNCE_DIRECTION_SYMMETRIC ? col_lse.data() : nullptr; }
  fnceStatus_t forward() {
    return fnceForward(&p, &loss, row_lse.data(), col(), nullptr, 0, nullptr);
  }
  fnceStatus_t backward() {
    return fnceBackward(&p, row_lse.data(), col(), &grad_loss, grad_a.data(),
                        p.b ? grad_b.data() : nullptr, &grad_scale, nullptr, 0, nullptr);
  }
};

void run_cpu(benchmark::State& state, Shape s, bool with_backward) {
  HostProblem h(s);
  for (auto _ : state) {
    fnceStatus_t st = h.forward();
    if (st == FNCE_SUCCESS && with_backward)
      st = h.backward();
    if (st != FNCE_SUCCESS) {
      state.SkipWithError((std::string("CPU reference: ") + fnceGetStatusString(st) + ": " +
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
  for (const Shape& s : cpu_shapes(o)) {
    for (bool bwd : {false, true}) {
      const std::string variant = bwd ? "cpu_fwdbwd" : "cpu_fwd";
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
      row.extra_bytes = 0; // CPU workspace is 0 bytes
      describe(name, row);
      auto* b = benchmark::RegisterBenchmark(
          name.c_str(), [s, bwd](benchmark::State& st) { run_cpu(st, s, bwd); });
      b->Unit(benchmark::kMillisecond);
      if (o.smoke)
        b->Iterations(1);
    }
  }
}

} // namespace flashnce::bench
