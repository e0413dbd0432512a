// flashnce_kernel_counters: the emulated half of the kernel report (scripts/kernel-report.sh).
//
// Runs every loss x dtype of the library's CUDA backend on the CPU SIMT emulator, its kernels
// built with the access hooks (flashnce_emu_counted), and writes per loss:
//   fwd_mac_ratio / bwd_mac_ratio  executed tensor MACs / (n m d): the algorithmic work is 1 for
//                                  the forward and 3 for the backward (logits recomputed once,
//                                  grad_a once, grad_b once)
//   smem_conflict_ratio            (wavefronts - ideal) / ideal over the main kernels' shared
//                                  memory requests (loads, stores, ldmatrix, cp.async writes)
//   sectors_per_request            global 32-byte sectors per warp-level request, all kernels
// and every launch's raw counters (tests/emu/README.md "Counters" says what they count).
// --launch-configs writes the block size and dynamic shared memory of each kernel x tile
// configuration (what the static SASS report cannot read from a cubin), from the traits.
//
//   flashnce_kernel_counters [--json OUT] [--launch-configs OUT] [--quick] [--d=D,...] [--n=N]
//
// Nothing here is a timing.  The counts are exact for the emulated run at the shapes run; the
// model that turns them into an H200 bound is bench/report/h200_model.py.
#include "cuda_emu.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_setup.h"
#include "flashnce/flashnce.hpp"
#include "host/backend.h" // set_forward_split_for_testing (the emulated library)
#include "kernels/loss/loss_traits.cuh"

namespace {

using flashnce::Buffer;
using flashnce::Loss;
using namespace flashnce::kernels;

constexpr size_t kH200SmemOptin = 232448; // 227 KB: cudaDevAttrMaxSharedMemoryPerBlockOptin

// ---- launch configurations from the traits ----------------------------------------------------
template <class Tr> const char* traits_dtype() {
  if constexpr (std::is_same_v<typename Tr::T, float>)
    return "float";
  else if constexpr (std::is_same_v<typename Tr::T, half_t>)
    return "half_t";
  else
    return "bfloat16_t";
}
template <class Tr> std::string config_name() {
  const char* t = std::is_same_v<typename Tr::T, float>    ? (Tr::kMma ? "tf32" : "f32")
                  : std::is_same_v<typename Tr::T, half_t> ? "f16"
                                                           : "bf16";
  return std::string(Tr::kMma ? "mma_" : "generic_") + t;
}

// One kernel x configuration: its block, dynamic shared memory, logit tile (block_m x block_n,
// 0 for kernels without one), for the gradient kernel at depth d its passes over d, and the
// largest d at which the operand of a block's first TMA copy stays resident in shared memory for
// the block's sweep (0: none; the model scales those bytes by blocks, not tiles).
void config_entry(std::ostringstream& o, bool& first, const std::string& kernel,
                  const std::string& config, int threads, size_t smem, int64_t d, int block_m = 0,
                  int block_n = 0, int64_t passes = 1, int64_t resident_depth = 0) {
  o << (first ? "\n  " : ",\n  ") << "{\"kernel\": \"" << kernel << "\", \"config\": \"" << config
    << "\", \"threads\": " << threads << ", \"dynamic_smem_bytes\": " << smem
    << ", \"block_m\": " << block_m << ", \"block_n\": " << block_n << ", \"passes\": " << passes
    << ", \"resident_depth\": " << resident_depth << ", \"d\": ";
  if (d > 0)
    o << d;
  else
    o << "null";
  o << "}";
  first = false;
}

template <class Tr> void traits_configs(std::ostringstream& o, bool& first) {
  const std::string traits =
      std::string(Tr::kMma ? "MmaTraits<" : "GenericTraits<") + traits_dtype<Tr>() + ">";
  const std::string cfg = config_name<Tr>();
  if constexpr (!Tr::kMma) // (the tensor cores' forward: forward_mma_configs)
    config_entry(o, first, "forward_main_kernel<" + traits + ">", cfg, Tr::kThreads,
                 Tr::kForwardSmem, 0, Tr::kBlockM, Tr::kBlockN);
  if constexpr (Tr::kMma) // (the tensor cores' gradient kernel: grad_mma_configs)
    return;
  for (int64_t d : {128, 512, 1024}) {
    const int64_t cols = grad_pass_columns<Tr>(d, kH200SmemOptin);
    const size_t smem = Tr::kGradSmemFixed + sizeof(float) * Tr::kBlockM * size_t(cols);
    config_entry(o, first, "grad_kernel<" + traits + ">", cfg + " d=" + std::to_string(d),
                 Tr::kThreads, smem, d, Tr::kBlockM, Tr::kBlockN, (d + cols - 1) / cols);
  }
}

// The tensor-core forward: one kernel per (similarity, LABELS, SYMMETRIC), named as c++filt
// spells the instantiation.
template <class Ft> void forward_mma_configs(std::ostringstream& o, bool& first) {
  const char* t = traits_dtype<Ft>();
  const std::string cfg = config_name<MmaTraits<typename Ft::T>>();
  for (int sim = 0; sim < 3; ++sim)
    for (const char* labels : {"false", "true"})
      for (const char* sym : {"false", "true"})
        config_entry(o, first,
                     std::string("forward_mma_kernel<ForwardMmaTraits<") + t + ">, (Similarity)" +
                         std::to_string(sim) + ", " + labels + ", " + sym + ">",
                     cfg, Ft::kThreads, Ft::kSmem, 0, Ft::kBlockM, Ft::kBlockN);
}

// The Hopper forward (sm_90a, bf16 / f16): the same 12 instantiations, in the tensor-core
// configuration (whose backward it shares).
template <class Ft> void forward_wgmma_configs(std::ostringstream& o, bool& first) {
  const char* t = traits_dtype<Ft>();
  const std::string cfg = config_name<MmaTraits<typename Ft::T>>();
  for (int sim = 0; sim < 3; ++sim)
    for (const char* labels : {"false", "true"})
      for (const char* sym : {"false", "true"})
        config_entry(o, first,
                     std::string("forward_wgmma_kernel<ForwardWgmmaTraits<") + t +
                         ">, (Similarity)" + std::to_string(sim) + ", " + labels + ", " + sym + ">",
                     cfg, Ft::kThreads, Ft::kSmem, 0, Ft::kBlockM, Ft::kBlockN, 1,
                     int64_t(Ft::kResidentChunks) * Ft::kChunk);
}

// The tensor-core gradient kernel: per (similarity, LABELS, SYMMETRIC, launch role) and depth.
template <class Gt> void grad_mma_configs(std::ostringstream& o, bool& first) {
  const char* t = traits_dtype<Gt>();
  const std::string cfg = config_name<MmaTraits<typename Gt::T>>();
  for (int sim = 0; sim < 3; ++sim)
    for (const char* labels : {"false", "true"})
      for (const char* sym : {"false", "true"})
        for (int mode = 0; mode < 3; ++mode)
          for (int64_t d : {128, 512, 1024}) {
            const int64_t cols = grad_pass_columns<Gt>(d, kH200SmemOptin);
            const size_t smem = Gt::kGradSmemFixed + sizeof(float) * Gt::kBlockM * size_t(cols);
            config_entry(o, first,
                         std::string("grad_mma_kernel<BackwardMmaTraits<") + t + ">, (Similarity)" +
                             std::to_string(sim) + ", " + labels + ", " + sym + ", (GradLaunch)" +
                             std::to_string(mode) + ">",
                         cfg + " d=" + std::to_string(d), Gt::kThreads, smem, d, Gt::kBlockM,
                         Gt::kBlockN, (d + cols - 1) / cols);
          }
}

// The Hopper gradient kernel (sm_90a, bf16 only): per (similarity, LABELS, SYMMETRIC, launch
// role); one pass over d (d <= kWgmmaBackwardMaxDepth: deeper problems take grad_mma_kernel).
template <class Gt> void grad_wgmma_configs(std::ostringstream& o, bool& first) {
  const char* t = traits_dtype<Gt>();
  const std::string cfg = config_name<MmaTraits<typename Gt::T>>();
  for (int sim = 0; sim < 3; ++sim)
    for (const char* labels : {"false", "true"})
      for (const char* sym : {"false", "true"})
        for (int mode = 0; mode < 3; ++mode)
          for (int64_t d : {128, 512})
            config_entry(o, first,
                         std::string("grad_wgmma_kernel<BackwardWgmmaTraits<") + t +
                             ">, (Similarity)" + std::to_string(sim) + ", " + labels + ", " + sym +
                             ", (GradLaunch)" + std::to_string(mode) + ">",
                         cfg + " d=" + std::to_string(d), Gt::kThreads, Gt::kSmem, d, Gt::kBlockM,
                         Gt::kBlockN, 1, Gt::kPassCols); // (x resident)
}

// The launch configurations as a JSON array.
std::string launch_configs_array() {
  std::ostringstream o;
  bool first = true;
  o << "[";
  traits_configs<GenericTraits<float>>(o, first);
  traits_configs<GenericTraits<half_t>>(o, first);
  traits_configs<GenericTraits<bfloat16_t>>(o, first);
  traits_configs<MmaTraits<float>>(o, first);
  traits_configs<MmaTraits<half_t>>(o, first);
  traits_configs<MmaTraits<bfloat16_t>>(o, first);
  forward_mma_configs<ForwardMmaTraits<float>>(o, first);
  forward_mma_configs<ForwardMmaTraits<half_t>>(o, first);
  forward_mma_configs<ForwardMmaTraits<bfloat16_t>>(o, first);
  forward_wgmma_configs<ForwardWgmmaTraits<half_t>>(o, first);
  forward_wgmma_configs<ForwardWgmmaTraits<bfloat16_t>>(o, first);
  grad_mma_configs<BackwardMmaTraits<float>>(o, first);
  grad_mma_configs<BackwardMmaTraits<half_t>>(o, first);
  grad_mma_configs<BackwardMmaTraits<bfloat16_t>>(o, first);
  grad_wgmma_configs<BackwardWgmmaTraits<bfloat16_t>>(o, first);
  constexpr int R = GenericTraits<float>::kReduceThreads;
  for (const char* t : {"float", "half_t", "bfloat16_t"})
    config_entry(o, first, std::string("row_norms_kernel<") + t + ">", "all", 256, 0, 0);
  config_entry(o, first, "column_merge_kernel<256>", "all", R, 0, 0);
  config_entry(o, first, "stats_finalize_kernel<256>", "all", R, 0, 0);
  config_entry(o, first, "loss_reduce_kernel<256>", "all", R, R * sizeof(int64_t), 0);
  config_entry(o, first, "counts_kernel<256>", "all", R, R * sizeof(int64_t), 0);
  config_entry(o, first, "grad_weights_kernel<256>", "all", R, R * sizeof(int64_t), 0);
  config_entry(o, first, "scale_reduce_kernel<256>", "all", R, R * sizeof(float), 0);
  o << "\n]";
  return o.str();
}

// ---- the emulated runs --------------------------------------------------------------------------
enum class LossKind { infonce, clip, nt_xent, supcon, vae_prior, moco };
const LossKind kLosses[] = {LossKind::infonce, LossKind::clip,      LossKind::nt_xent,
                            LossKind::supcon,  LossKind::vae_prior, LossKind::moco};
const char* loss_name(LossKind k) {
  switch (k) {
  case LossKind::infonce:
    return "infonce";
  case LossKind::clip:
    return "clip";
  case LossKind::nt_xent:
    return "nt_xent";
  case LossKind::supcon:
    return "supcon";
  case LossKind::vae_prior:
    return "vae_prior";
  case LossKind::moco:
    return "moco";
  }
  return "?";
}

struct DtypeCase {
  const char* name;
  fnceDataType_t dtype;
  int allow_tf32;
};
const DtypeCase kDtypes[] = {
    {"bf16", FNCE_BF16, 0}, {"f16", FNCE_F16, 0}, {"tf32", FNCE_F32, 1}, {"f32", FNCE_F32, 0}};

// Reproducible inputs of size ~1/sqrt(d), as bit patterns of the dtype (the benchmarks' own).
std::vector<unsigned char> inputs(int64_t count, fnceDataType_t dtype, uint64_t seed, int64_t d) {
  std::vector<unsigned char> out(size_t(count) * (dtype == FNCE_F32 ? 4 : 2));
  flashnce::bench::fill_host_inputs(out.data(), count, dtype, seed, d);
  return out;
}

struct Sum {
  uint64_t macs = 0, wavefronts = 0, ideal = 0, sectors = 0, requests = 0;
};

bool main_kernel(const char* name) {
  return std::strstr(name, "forward_main_kernel") != nullptr ||
         std::strstr(name, "forward_mma_kernel") != nullptr ||
         std::strstr(name, "forward_wgmma_kernel") != nullptr ||
         std::strstr(name, "grad_mma_kernel") != nullptr ||
         std::strstr(name, "grad_kernel") != nullptr;
}

void add(Sum& s, const std::vector<cuda_emu::LaunchCounters>& v) {
  for (const auto& c : v) {
    s.macs += c.tensor_macs;
    s.sectors += c.gmem_load_sectors + c.gmem_store_sectors;
    s.requests += c.gmem_load_requests + c.gmem_store_requests;
    if (main_kernel(c.kernel)) {
      s.wavefronts += c.smem_load_wavefronts + c.smem_store_wavefronts;
      s.ideal += c.smem_load_ideal + c.smem_store_ideal;
    }
  }
}

std::string escape(const char* s) {
  std::string o;
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\')
      o += '\\';
    o += *s;
  }
  return o;
}

void launch_json(std::ostringstream& o, bool& first, const cuda_emu::LaunchCounters& c,
                 const char* loss, const char* dtype, const char* phase, int64_t n, int64_t m,
                 int64_t d) {
  o << (first ? "\n  " : ",\n  ") << "{\"loss\": \"" << loss << "\", \"dtype\": \"" << dtype
    << "\", \"phase\": \"" << phase << "\", \"n\": " << n << ", \"m\": " << m << ", \"d\": " << d
    << ", \"kernel\": \"" << escape(c.kernel) << "\", \"grid\": " << c.grid[0]
    << ", \"block\": " << c.block[0] << ", \"dynamic_smem\": " << c.dynamic_smem
    << ", \"blocks\": " << c.blocks << ", \"barriers\": " << c.barriers
    << ", \"mma_instructions\": " << c.mma_instructions << ", \"tensor_macs\": " << c.tensor_macs
    << ", \"wgmma_instructions\": " << c.wgmma_instructions
    << ", \"tma_requests\": " << c.tma_requests << ", \"tma_bytes\": " << c.tma_bytes
    << ", \"tma_first_map_bytes\": " << c.tma_first_map_bytes
    << ", \"smem_load_requests\": " << c.smem_load_requests
    << ", \"smem_load_wavefronts\": " << c.smem_load_wavefronts
    << ", \"smem_load_ideal\": " << c.smem_load_ideal
    << ", \"smem_store_requests\": " << c.smem_store_requests
    << ", \"smem_store_wavefronts\": " << c.smem_store_wavefronts
    << ", \"smem_store_ideal\": " << c.smem_store_ideal
    << ", \"ldmatrix_requests\": " << c.ldmatrix_requests
    << ", \"ldmatrix_wavefronts\": " << c.ldmatrix_wavefronts
    << ", \"gmem_load_requests\": " << c.gmem_load_requests
    << ", \"gmem_load_sectors\": " << c.gmem_load_sectors
    << ", \"gmem_load_bytes\": " << c.gmem_load_bytes
    << ", \"gmem_store_requests\": " << c.gmem_store_requests
    << ", \"gmem_store_sectors\": " << c.gmem_store_sectors
    << ", \"gmem_store_bytes\": " << c.gmem_store_bytes
    << ", \"cp_async_requests\": " << c.cp_async_requests
    << ", \"accesses_instrumented\": " << (c.accesses_instrumented ? "true" : "false") << "}";
  first = false;
}

struct Run {
  std::string summary; // one "emulated" entry
  bool ok = true;
};

// One loss x dtype x shape in the backend's memory: inputs (reproducible values, or left
// uninitialised for a dry run), outputs, and the params of the loss.
struct Problem {
  Problem(LossKind k, const DtypeCase& dt, int64_t n_, int64_t d_, bool fill)
      : n(n_), m(k == LossKind::moco ? 4 * n_ : n_), d(d_),
        self(k == LossKind::nt_xent || k == LossKind::supcon) {
    // MoCo: n queries against n keys and a queue of 3n.
    const fnceBackend_t be = FNCE_BACKEND_CUDA;
    const size_t es = dt.dtype == FNCE_F32 ? 4 : 2;
    a = fill ? Buffer<unsigned char>(be, inputs(n * d, dt.dtype, 1, d))
             : Buffer<unsigned char>(be, size_t(n * d) * es);
    b = fill ? Buffer<unsigned char>(be, inputs(m * d, dt.dtype, 2, d))
             : Buffer<unsigned char>(be, size_t(m * d) * es);
    std::vector<int64_t> host_labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      host_labels[size_t(i)] = i % 16;
    labels = Buffer<int64_t>(be, host_labels);
    const bool cosine = k == LossKind::clip || k == LossKind::nt_xent || k == LossKind::supcon ||
                        k == LossKind::moco;
    scale = Buffer<float>(be, {cosine ? 1.0f / 0.07f : 1.0f});
    loss = Buffer<float>(be, 1);
    one = Buffer<float>(be, {1.0f});
    gscale = Buffer<float>(be, 1);
    ga = Buffer<unsigned char>(be, size_t(n * d) * es);
    gb = Buffer<unsigned char>(be, size_t(m * d) * es);
    switch (k) {
    case LossKind::infonce:
      p = flashnce::infonce(n, m, d, a.data(), b.data(), scale.data(), be, dt.dtype);
      break;
    case LossKind::clip:
      p = flashnce::clip(n, d, a.data(), b.data(), scale.data(), be, dt.dtype);
      break;
    case LossKind::nt_xent:
      p = flashnce::nt_xent(n, d, a.data(), scale.data(), be, dt.dtype);
      break;
    case LossKind::supcon:
      p = flashnce::supcon(n, d, a.data(), labels.data(), scale.data(), be, dt.dtype);
      break;
    case LossKind::vae_prior:
      p = flashnce::vae_prior(n, m, d, a.data(), b.data(), scale.data(), be, dt.dtype);
      break;
    case LossKind::moco:
      p = flashnce::moco(n, m - n, d, a.data(), b.data(), scale.data(), be, dt.dtype);
      break;
    }
    p.allow_tf32 = dt.allow_tf32;
  }
  // Forward, then backward with every gradient output; the launches of each.
  void run(std::vector<cuda_emu::LaunchCounters>* fwd, std::vector<cuda_emu::LaunchCounters>* bwd) {
    Loss L(p);
    (void)cuda_emu::counters_take();
    L.forward(loss.data());
    *fwd = cuda_emu::counters_take();
    L.backward(one.data(), ga.data(), self ? nullptr : gb.data(), gscale.data());
    *bwd = cuda_emu::counters_take();
  }
  int64_t n, m, d;
  bool self;
  Buffer<unsigned char> a, b, ga, gb;
  Buffer<int64_t> labels;
  Buffer<float> scale, loss, one, gscale;
  fnceLossParams p{};
};

// One loss x dtype x shape, counted.
Run run_case(LossKind k, const DtypeCase& dt, int64_t n, int64_t d, std::ostringstream& launches,
             bool& first_launch) {
  Run r;
  Sum fwd, bwd;
  int64_t m = n;
  try {
    Problem pb(k, dt, n, d, true);
    m = pb.m;
    std::vector<cuda_emu::LaunchCounters> f, g;
    pb.run(&f, &g);
    add(fwd, f);
    add(bwd, g);
    for (const auto& c : f)
      launch_json(launches, first_launch, c, loss_name(k), dt.name, "forward", n, m, d);
    for (const auto& c : g)
      launch_json(launches, first_launch, c, loss_name(k), dt.name, "backward", n, m, d);
    const float value = pb.loss.download()[0];
    if (!std::isfinite(value)) {
      std::fprintf(stderr, "%s %s n=%lld d=%lld: non-finite loss\n", loss_name(k), dt.name,
                   (long long)n, (long long)d);
      r.ok = false;
    }
  } catch (const flashnce::Error& e) {
    std::fprintf(stderr, "%s %s n=%lld d=%lld: %s\n", loss_name(k), dt.name, (long long)n,
                 (long long)d, e.what());
    r.ok = false;
    return r;
  }
  const double nmd = double(n) * double(m) * double(d);
  const uint64_t wf = fwd.wavefronts + bwd.wavefronts, ideal = fwd.ideal + bwd.ideal;
  const uint64_t sec = fwd.sectors + bwd.sectors, req = fwd.requests + bwd.requests;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"loss\": \"%s\", \"dtype\": \"%s\", \"n\": %lld, \"m\": %lld, \"d\": %lld, "
                "\"fwd_mac_ratio\": %.4f, \"bwd_mac_ratio\": %.4f, \"smem_conflict_ratio\": %.4f, "
                "\"sectors_per_request\": %.3f, \"fwd_smem_conflict_ratio\": %.4f, "
                "\"bwd_smem_conflict_ratio\": %.4f}",
                loss_name(k), dt.name, (long long)n, (long long)m, (long long)d,
                double(fwd.macs) / nmd, double(bwd.macs) / nmd,
                ideal ? double(wf - ideal) / double(ideal) : 0.0,
                req ? double(sec) / double(req) : 0.0,
                fwd.ideal ? double(fwd.wavefronts - fwd.ideal) / double(fwd.ideal) : 0.0,
                bwd.ideal ? double(bwd.wavefronts - bwd.ideal) / double(bwd.ideal) : 0.0);
  r.summary = buf;
  return r;
}

// One loss x dtype x target shape as a dry run: the launches the dispatch chooses (grid, block,
// shared memory), no block run.
bool dry_case(LossKind k, const DtypeCase& dt, int64_t n, int64_t d, std::ostringstream& out,
              bool& first) {
  try {
    Problem pb(k, dt, n, d, false);
    std::vector<cuda_emu::LaunchCounters> f, g;
    cuda_emu::set_dry_run(true);
    pb.run(&f, &g);
    cuda_emu::set_dry_run(false);
    for (const auto& c : f)
      launch_json(out, first, c, loss_name(k), dt.name, "forward", n, pb.m, d);
    for (const auto& c : g)
      launch_json(out, first, c, loss_name(k), dt.name, "backward", n, pb.m, d);
    return true;
  } catch (const flashnce::Error& e) {
    cuda_emu::set_dry_run(false);
    std::fprintf(stderr, "dry run %s %s n=%lld d=%lld: %s\n", loss_name(k), dt.name, (long long)n,
                 (long long)d, e.what());
    return false;
  }
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

} // namespace

int main(int argc, char** argv) {
  std::string json_path, configs_path;
  bool quick = false;
  std::vector<int64_t> depths = {128, 512};
  std::vector<int64_t> targets = {16384, 65536};
  int64_t n = 256;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--launch-configs" && i + 1 < argc) {
      configs_path = argv[++i];
    } else if (a == "--quick") {
      quick = true;
    } else if (a.rfind("--n=", 0) == 0) {
      n = std::atoll(a.c_str() + 4);
    } else if (a.rfind("--targets=", 0) == 0) {
      targets.clear();
      std::stringstream ss(a.substr(10));
      for (std::string t; std::getline(ss, t, ',');)
        targets.push_back(std::atoll(t.c_str()));
    } else if (a.rfind("--d=", 0) == 0) {
      depths.clear();
      std::stringstream ss(a.substr(4));
      for (std::string t; std::getline(ss, t, ',');)
        depths.push_back(std::atoll(t.c_str()));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--json OUT] [--launch-configs OUT] [--quick] [--n=N] [--d=D,...]\n"
                   "          [--targets=N,...]\n"
                   "  counted runs at n = N (default 256) and each d = D (default 128,512); dry\n"
                   "  runs (the launch shapes only) at n = each target (default 16384,65536)\n"
                   "  --quick: n = 64, d = 32, target 4096 (seconds; what CTest runs)\n",
                   argv[0]);
      return 2;
    }
  }
  if (quick) {
    n = 64;
    depths = {32};
    targets = {4096};
  }
  if (!configs_path.empty() &&
      !write_file(configs_path, "{\"launch_configs\": " + launch_configs_array() + "}\n")) {
    std::fprintf(stderr, "cannot write %s\n", configs_path.c_str());
    return 1;
  }
  if (!fnceBackendIsAvailable(FNCE_BACKEND_CUDA)) {
    std::fprintf(stderr, "the emulated CUDA backend is not available\n");
    return 1;
  }
  cuda_emu::counters_enable(true);
  // The counted runs with one column split (each block sweeps every column tile of its row
  // tiles, the row groups as the dispatch makes them), not the dispatch's split for this small
  // shape (a block per tile): at the target shapes blocks sweep many column tiles, and what a
  // block loads once per row tile (the Hopper forward's resident row tile of a) is then spread
  // over 2 tiles here rather than 1: still more per tile than at the target, so still a bound.
  flashnce::cuda_backend::set_forward_split_for_testing(1 << 30, 1);
  std::ostringstream launches;
  bool first_launch = true;
  std::vector<std::string> rows;
  bool ok = true;
  bool instrumented = true;
  for (int64_t d : depths)
    for (LossKind k : kLosses)
      for (const DtypeCase& dt : kDtypes) {
        const Run r = run_case(k, dt, n, d, launches, first_launch);
        ok = ok && r.ok;
        if (r.ok)
          rows.push_back(r.summary);
        std::printf("%s\n", r.ok ? r.summary.c_str() : "(failed)");
      }
  instrumented = launches.str().find("\"accesses_instrumented\": false") == std::string::npos;
  flashnce::cuda_backend::set_forward_split_for_testing(0, 0); // the dry runs: the dispatch's
  std::ostringstream dry;
  bool first_dry = true;
  for (int64_t t : targets)
    for (int64_t d : depths)
      for (LossKind k : kLosses)
        for (const DtypeCase& dt : kDtypes)
          ok = dry_case(k, dt, t, d, dry, first_dry) && ok;
  if (!instrumented) {
    std::fprintf(stderr, "some launches saw no instrumented access: are the kernels built with "
                         "cuda_emu_counted?\n");
    ok = false;
  }
  if (!json_path.empty()) {
    std::ostringstream o;
    o << "{\"emulated\": [";
    for (size_t i = 0; i < rows.size(); ++i)
      o << (i ? ",\n  " : "\n  ") << rows[i];
    o << "\n], \"launches\": [" << launches.str() << "\n], \"target_launches\": [" << dry.str()
      << "\n], \"launch_configs\": " << launch_configs_array() << "}\n";
    if (!write_file(json_path, o.str())) {
      std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return ok ? 0 : 1;
}
