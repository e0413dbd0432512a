// Concurrency: 12 host threads call the C API at once, mixing valid problems (each thread its own
// data) with invalid ones whose messages carry a per-thread value, on the CPU reference, the host
// backend (whose own OpenMP threads then run inside each caller's call) and on the CUDA backend
// as this build has it (flashnce_emu: the emulated kernels, one stream per thread).
// Each thread checks its own outputs bitwise against the same call made single-threaded beforehand,
// and that fnceGetLastErrorMessage() is its own message (per-thread storage), never another
// thread's.  The `tsan` preset runs this under ThreadSanitizer.
#ifdef FLASHNCE_EMULATED
#include "cuda_emu.h" // before any CUDA header: streams for the emulated CUDA backend
#endif
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "flashnce/flashnce.h"

namespace {

constexpr int kThreads = 12;
constexpr int kIterations = 20;
#ifdef FLASHNCE_EMULATED
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

// A copy of host data in the backend's memory (CUDA on the emulator), copied back by download().
struct DeviceCopy {
  fnceBackend_t be;
  void* ptr = nullptr;
  size_t bytes;
  DeviceCopy(fnceBackend_t b, const void* host, size_t n) : be(b), bytes(n) {
    fnceMalloc(be, &ptr, bytes);
    fnceMemcpy(be, ptr, host, bytes, FNCE_COPY_HOST_TO_BACKEND);
  }
  ~DeviceCopy() { fnceFree(be, ptr); }
  void download(void* host) const { fnceMemcpy(be, host, ptr, bytes, FNCE_COPY_BACKEND_TO_HOST); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
};

struct Result {
  fnceStatus_t forward = FNCE_ERROR_INTERNAL, backward = FNCE_ERROR_INTERNAL;
  std::string forward_message, backward_message;
  std::vector<float> loss, row_lse, col_lse, grad_a, grad_b;
  float grad_scale = 0;
};

struct Case {
  fnceBackend_t backend;
  int64_t n, m, d;
  bool symmetric;
  std::vector<float> a, b;
  float scale;
};

Case make_case(int tid) {
  Case c;
  // CUDA where it fails before touching memory (no device / no CUDA build: host buffers), or on
  // the emulated backend (flashnce_emu: device buffers, one stream per thread).
  const bool cuda_ok = kEmulated || !fnceBackendIsAvailable(FNCE_BACKEND_CUDA);
  // The others alternate between the f64 reference and the host backend (its own workspace).
  c.backend = tid % 3 == 2 && cuda_ok ? FNCE_BACKEND_CUDA
              : tid % 3 == 1          ? FNCE_BACKEND_HOST
                                      : FNCE_BACKEND_CPU;
  c.n = 5 + tid % 4;
  c.m = c.n + tid % 3;
  c.d = 3 + tid % 5;
  c.symmetric = tid % 2 == 1;
  if (c.symmetric)
    c.m = c.n;
  std::mt19937 rng(1000 + tid);
  std::normal_distribution<float> g(0.0f, 1.0f);
  c.a.resize(size_t(c.n * c.d));
  c.b.resize(size_t(c.m * c.d));
  for (auto& x : c.a)
    x = g(rng);
  for (auto& x : c.b)
    x = g(rng);
  c.scale = 1.0f + 0.25f * float(tid);
  return c;
}

// One forward + backward of `c` (host memory; see make_case for CUDA).
// `bad_d` != 0 makes the problem invalid with d = bad_d.
Result run(const Case& c, int64_t bad_d) {
  fnceLossParams p;
  fnceLossParamsInit(&p);
  p.backend = c.backend;
  p.n = c.n;
  p.m = c.m;
  p.d = bad_d != 0 ? bad_d : c.d;
  p.a = c.a.data();
  p.b = c.b.data();
  p.logit_scale = &c.scale;
  p.direction = c.symmetric ? FNCE_DIRECTION_SYMMETRIC : FNCE_DIRECTION_ROWS;
  p.similarity = FNCE_SIM_COSINE;
  Result r;
  r.loss.assign(1, -7.0f);
  r.row_lse.assign(size_t(c.n), -7.0f);
  r.col_lse.assign(size_t(c.m), -7.0f);
  r.grad_a.assign(c.a.size(), -7.0f);
  r.grad_b.assign(c.b.size(), -7.0f);
  const float one = 1.0f;
  if (kEmulated && c.backend == FNCE_BACKEND_CUDA) {
#ifdef FLASHNCE_EMULATED
    auto bytes = [](const std::vector<float>& v) { return v.size() * sizeof(float); };
    DeviceCopy a(c.backend, c.a.data(), bytes(c.a)), b(c.backend, c.b.data(), bytes(c.b)),
        scale(c.backend, &c.scale, 4), g1(c.backend, &one, 4),
        loss(c.backend, r.loss.data(), bytes(r.loss)),
        row(c.backend, r.row_lse.data(), bytes(r.row_lse)),
        col(c.backend, r.col_lse.data(), bytes(r.col_lse)),
        ga(c.backend, r.grad_a.data(), bytes(r.grad_a)),
        gb(c.backend, r.grad_b.data(), bytes(r.grad_b)), gs(c.backend, &r.grad_scale, 4);
    p.a = a.ptr;
    p.b = b.ptr;
    p.logit_scale = static_cast<const float*>(scale.ptr);
    cudaStream_t stream = nullptr;
    cudaStreamCreate(&stream);
    size_t fws = 0, bws = 0;
    fnceForwardWorkspaceSize(&p, &fws);
    fnceBackwardWorkspaceSize(&p, &bws);
    void* ws = nullptr;
    fnceMalloc(c.backend, &ws, std::max(fws, bws));
    r.forward = fnceForward(&p, static_cast<float*>(loss.ptr), static_cast<float*>(row.ptr),
                            static_cast<float*>(col.ptr), ws, fws, stream);
    r.forward_message = fnceGetLastErrorMessage();
    r.backward = fnceBackward(&p, static_cast<float*>(row.ptr), static_cast<float*>(col.ptr),
                              static_cast<const float*>(g1.ptr), ga.ptr, gb.ptr,
                              static_cast<float*>(gs.ptr), ws, bws, stream);
    r.backward_message = fnceGetLastErrorMessage();
    fnceSynchronize(c.backend, stream);
    cudaStreamDestroy(stream);
    fnceFree(c.backend, ws);
    loss.download(r.loss.data());
    row.download(r.row_lse.data());
    col.download(r.col_lse.data());
    ga.download(r.grad_a.data());
    gb.download(r.grad_b.data());
    gs.download(&r.grad_scale);
#endif
    return r;
  }
  // Host memory (CPU, HOST, or CUDA failing before it touches memory).  The workspace queries
  // fail for the bad problems (0 bytes then): forward / backward report the same error.
  size_t fws = 0, bws = 0;
  fnceForwardWorkspaceSize(&p, &fws);
  fnceBackwardWorkspaceSize(&p, &bws);
  std::vector<unsigned char> ws(std::max(fws, bws));
  r.forward = fnceForward(&p, r.loss.data(), r.row_lse.data(), r.col_lse.data(),
                          fws ? ws.data() : nullptr, fws, nullptr);
  r.forward_message = fnceGetLastErrorMessage();
  r.backward = fnceBackward(&p, r.row_lse.data(), r.col_lse.data(), &one, r.grad_a.data(),
                            r.grad_b.data(), &r.grad_scale, bws ? ws.data() : nullptr, bws,
                            nullptr);
  r.backward_message = fnceGetLastErrorMessage();
  return r;
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

TEST(Concurrency, ThreadsSeeTheirOwnResultsAndMessages) {
  std::vector<Case> cases;
  std::vector<Result> expected_ok, expected_bad;
  for (int t = 0; t < kThreads; ++t) {
    cases.push_back(make_case(t));
    expected_ok.push_back(run(cases.back(), 0));
    expected_bad.push_back(run(cases.back(), -(t + 1)));
  }
  // The single-threaded calls themselves: the CPU ones succeed, the bad ones name d's value.
  for (int t = 0; t < kThreads; ++t) {
    if (cases[size_t(t)].backend != FNCE_BACKEND_CUDA || kEmulated) {
      ASSERT_EQ(expected_ok[size_t(t)].forward, FNCE_SUCCESS)
          << expected_ok[size_t(t)].forward_message;
      ASSERT_EQ(expected_ok[size_t(t)].backward, FNCE_SUCCESS)
          << expected_ok[size_t(t)].backward_message;
    }
    ASSERT_EQ(expected_bad[size_t(t)].forward, FNCE_ERROR_INVALID_VALUE);
    ASSERT_EQ(expected_bad[size_t(t)].forward_message,
              "d must be >= 1, got " + std::to_string(-(t + 1)));
  }

  std::atomic<int> ready{0};
  std::vector<int> failures(kThreads, 0);
  std::vector<std::string> first_failure(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      } // start together
      for (int it = 0; it < kIterations; ++it) {
        const bool bad = (it + t) % 3 == 0;
        const Result got = run(cases[size_t(t)], bad ? -(t + 1) : 0);
        const Result& want = bad ? expected_bad[size_t(t)] : expected_ok[size_t(t)];
        std::string why;
        if (got.forward != want.forward || got.backward != want.backward)
          why = "status";
        else if (got.forward_message != want.forward_message ||
                 got.backward_message != want.backward_message)
          why = "message: got \"" + got.forward_message + "\" / \"" + got.backward_message + "\"";
        else if (!same_bits(got.loss, want.loss) || !same_bits(got.row_lse, want.row_lse) ||
                 !same_bits(got.col_lse, want.col_lse) || !same_bits(got.grad_a, want.grad_a) ||
                 !same_bits(got.grad_b, want.grad_b) ||
                 std::memcmp(&got.grad_scale, &want.grad_scale, sizeof(float)) != 0)
          why = "outputs differ from the single-threaded call";
        if (!why.empty() && failures[size_t(t)]++ == 0)
          first_failure[size_t(t)] = "iteration " + std::to_string(it) + ": " + why;
      }
    });
  for (auto& th : threads)
    th.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(failures[size_t(t)], 0) << "thread " << t << ": " << first_failure[size_t(t)];
}

} // namespace
