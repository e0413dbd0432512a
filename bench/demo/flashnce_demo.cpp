// flashnce_demo: contrastive losses on paired Gaussian embeddings with a known mutual information.
//
//   z ~ N(0, I_d),  z' = rho z + sqrt(1 - rho^2) eps,  eps ~ N(0, I_d)   =>  I(z; z') = -(d/2)
//   log(1 - rho^2)
//
// For each batch size N the demo runs InfoNCE, CLIP, NT-Xent and the VAE-prior loss through the
// public C++ API (CUDA backend when a device is present, else the host backend) and prints
// the InfoNCE bound log N - loss (<= log N, <= I) and the VAE-prior ELBO estimate -loss.
//
// The default critic is the Bayes-optimal one for this pair, log p(z'|z)/p(z') up to a per-row
// constant: NEG_SQ_DIST between a = z/rho and b = z' with scale rho^2 / (2 (1 - rho^2)).  With it
// the InfoNCE bound approaches min(log N, I) and the ELBO estimate approaches I.
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "flashnce/flashnce.hpp"
#include "npy_reader.h"

namespace {

constexpr int kUsageError = 2;

const char kUsage[] =
    "usage: flashnce_demo [options]\n"
    "  Contrastive losses on paired Gaussian embeddings z' = rho z + sqrt(1-rho^2) eps with known\n"
    "  mutual information -(d/2) log(1-rho^2); one table row per batch size N.\n"
    "options:\n"
    "  --n N[,N...]         batch sizes (default 64,256,1024,4096)\n"
    "  --d D                embedding width (default 10)\n"
    "  --rho R              correlation per dimension, 0 < R < 1 (default 0.8)\n"
    "  --loss L             all | infonce | clip | nt_xent | vae_prior (default all)\n"
    "  --similarity S       negsqdist | dot | cosine (default negsqdist: the optimal critic,\n"
    "                       applied to a = z/rho and b = z')\n"
    "  --scale S            logit scale (default: rho^2/(2(1-rho^2)) for negsqdist,\n"
    "                       rho/(1-rho^2) for dot, 10 for cosine)\n"
    "  --backend B          cuda | host | cpu (default: cuda when a device is present, else host;\n"
    "                       host = the f32 BLAS CPU backend, cpu = the f64 reference)\n"
    "  --npy A.npy [B.npy]  use these embeddings instead (float32/float64, C order, n x d);\n"
    "                       with one file its rows are the two views stacked [x; x']\n"
    "  --seed S             random seed (default 1)\n"
    "  --help               this text\n";

struct Options {
  std::vector<int64_t> sizes;
  int64_t d = 10;
  double rho = 0.8;
  std::string loss = "all";
  fnceSimilarity_t similarity = FNCE_SIM_NEG_SQ_DIST;
  bool scale_given = false;
  double scale = 0;
  bool backend_given = false;
  fnceBackend_t backend = FNCE_BACKEND_CPU;
  std::vector<std::string> npy;
  uint64_t seed = 1;
};

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "flashnce_demo: %s\n(run flashnce_demo --help for the options)\n",
               what.c_str());
  std::exit(kUsageError);
}

int64_t parse_int(const std::string& opt, const std::string& v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    usage_error(opt + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got '" + v + "'");
  return x;
}

double parse_double(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x))
    usage_error(opt + " must be a finite number, got '" + v + "'");
  return x;
}

Options parse(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc)
      usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--n") {
      std::stringstream list(value(i));
      std::string item;
      while (std::getline(list, item, ','))
        o.sizes.push_back(parse_int("--n", item, 2, int64_t{1} << 24));
      if (o.sizes.empty())
        usage_error("--n needs at least one batch size");
    } else if (a == "--d") {
      o.d = parse_int("--d", value(i), 1, 1 << 16);
    } else if (a == "--rho") {
      o.rho = parse_double("--rho", value(i));
      if (!(o.rho > 0 && o.rho < 1))
        usage_error(std::string("--rho must be in (0, 1), got ") + argv[i]);
    } else if (a == "--loss") {
      o.loss = value(i);
      if (o.loss != "all" && o.loss != "infonce" && o.loss != "clip" && o.loss != "nt_xent" &&
          o.loss != "vae_prior")
        usage_error("--loss must be all, infonce, clip, nt_xent or vae_prior, got '" + o.loss +
                    "'");
    } else if (a == "--similarity") {
      const std::string s = value(i);
      if (s == "negsqdist")
        o.similarity = FNCE_SIM_NEG_SQ_DIST;
      else if (s == "dot")
        o.similarity = FNCE_SIM_DOT;
      else if (s == "cosine")
        o.similarity = FNCE_SIM_COSINE;
      else
        usage_error("--similarity must be negsqdist, dot or cosine, got '" + s + "'");
    } else if (a == "--scale") {
      o.scale = parse_double("--scale", value(i));
      o.scale_given = true;
    } else if (a == "--backend") {
      const std::string b = value(i);
      if (b == "cpu")
        o.backend = FNCE_BACKEND_CPU;
      else if (b == "cuda")
        o.backend = FNCE_BACKEND_CUDA;
      else if (b == "host")
        o.backend = FNCE_BACKEND_HOST;
      else
        usage_error("--backend must be cuda, host or cpu, got '" + b + "'");
      o.backend_given = true;
    } else if (a == "--npy") {
      o.npy.push_back(value(i));
      if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0)
        o.npy.push_back(argv[++i]);
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(parse_int("--seed", value(i), 0, INT64_MAX));
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  return o;
}

// Embeddings for one table row: a (n x d), b (m x d), and what is known about them.
struct Batch {
  int64_t n = 0, m = 0, d = 0;
  std::vector<float> a, b;
  double true_mi = NAN; // unknown for user data
};

Batch gaussian_batch(int64_t n, const Options& o, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Batch batch;
  batch.n = batch.m = n;
  batch.d = o.d;
  batch.a.resize(static_cast<size_t>(n * o.d));
  batch.b.resize(batch.a.size());
  const double noise = std::sqrt(1 - o.rho * o.rho);
  // The optimal Gaussian critic compares z/rho with z' (see the file comment).
  const double a_factor = o.similarity == FNCE_SIM_NEG_SQ_DIST ? 1.0 / o.rho : 1.0;
  for (size_t k = 0; k < batch.a.size(); ++k) {
    const double z = normal(rng), eps = normal(rng);
    batch.a[k] = static_cast<float>(a_factor * z);
    batch.b[k] = static_cast<float>(o.rho * z + noise * eps);
  }
  batch.true_mi = -0.5 * static_cast<double>(o.d) * std::log(1 - o.rho * o.rho);
  return batch;
}

Batch npy_batch(const Options& o) {
  flashnce_demo::NpyMatrix x, y;
  std::string error;
  if (!flashnce_demo::read_npy(o.npy[0], &x, &error))
    usage_error(error);
  Batch batch;
  batch.d = x.cols;
  if (o.npy.size() == 2) {
    if (!flashnce_demo::read_npy(o.npy[1], &y, &error))
      usage_error(error);
    if (y.cols != x.cols)
      usage_error("the two .npy files must have the same number of columns, got " +
                  std::to_string(x.cols) + " and " + std::to_string(y.cols));
    if (y.rows != x.rows)
      usage_error("the two .npy files must have the same number of rows (pairs), got " +
                  std::to_string(x.rows) + " and " + std::to_string(y.rows));
    batch.n = batch.m = x.rows;
    batch.a = std::move(x.data);
    batch.b = std::move(y.data);
  } else {
    if (x.rows % 2 != 0 || x.rows < 2)
      usage_error(o.npy[0] +
                  ": with one file the rows are two stacked views and must be even, got " +
                  std::to_string(x.rows));
    batch.n = batch.m = x.rows / 2;
    const size_t half = static_cast<size_t>(batch.n * batch.d);
    batch.a.assign(x.data.begin(), x.data.begin() + static_cast<std::ptrdiff_t>(half));
    batch.b.assign(x.data.begin() + static_cast<std::ptrdiff_t>(half), x.data.end());
  }
  return batch;
}

double default_scale(const Options& o) {
  if (o.scale_given)
    return o.scale;
  const double r2 = o.rho * o.rho;
  switch (o.similarity) {
  case FNCE_SIM_NEG_SQ_DIST:
    return r2 / (2 * (1 - r2));
  case FNCE_SIM_DOT:
    return o.rho / (1 - r2);
  case FNCE_SIM_COSINE:
    return 10.0;
  }
  return 1.0;
}

struct Row {
  double infonce = NAN, clip = NAN, nt_xent = NAN, vae_prior = NAN, seconds = 0;
};

Row run_batch(const Batch& batch, const Options& o, fnceBackend_t be) {
  const auto n = batch.n, d = batch.d;
  flashnce::Buffer<float> a(be, batch.a), b(be, batch.b);
  flashnce::Buffer<float> scale(be, {static_cast<float>(default_scale(o))}), loss(be, 1);
  // NT-Xent sees both views stacked [a; b] in self mode.
  std::vector<float> stacked(batch.a);
  stacked.insert(stacked.end(), batch.b.begin(), batch.b.end());
  flashnce::Buffer<float> views(be, stacked);

  auto run = [&](fnceLossParams p) {
    p.similarity = o.similarity; // one critic for every loss, so the numbers are comparable
    flashnce::Loss l(p);
    l.forward(loss.data());
    return static_cast<double>(loss.download()[0]); // download() waits for the result
  };
  auto want = [&](const char* name) { return o.loss == "all" || o.loss == name; };

  Row row;
  const auto start = std::chrono::steady_clock::now();
  if (want("infonce"))
    row.infonce = run(flashnce::infonce(n, n, d, a.data(), b.data(), scale.data(), be));
  if (want("clip"))
    row.clip = run(flashnce::clip(n, d, a.data(), b.data(), scale.data(), be));
  if (want("nt_xent"))
    row.nt_xent = run(flashnce::nt_xent(2 * n, d, views.data(), scale.data(), be));
  if (want("vae_prior"))
    row.vae_prior = run(flashnce::vae_prior(n, n, d, a.data(), b.data(), scale.data(), be));
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return row;
}

void print_value(double v) {
  if (std::isnan(v))
    std::printf(" %10s", "-");
  else
    std::printf(" %10.4f", v);
}

} // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  fnceBackend_t be = o.backend;
  if (!o.backend_given)
    be = fnceBackendIsAvailable(FNCE_BACKEND_CUDA) ? FNCE_BACKEND_CUDA : FNCE_BACKEND_HOST;
  if (be == FNCE_BACKEND_CUDA && !fnceBackendIsAvailable(FNCE_BACKEND_CUDA)) {
    char name[8];
    fnceGetDeviceName(FNCE_BACKEND_CUDA, name, sizeof name); // records why
    std::fprintf(stderr, "flashnce_demo: --backend cuda, but the CUDA backend cannot run: %s\n",
                 fnceGetLastErrorMessage());
    return 1;
  }
  if (o.sizes.empty())
    o.sizes = {64, 256, 1024, 4096, 16384}; // about 3 s on the host backend (2 cores)
  if (!o.npy.empty() && (o.similarity == FNCE_SIM_NEG_SQ_DIST && !o.scale_given))
    o.scale = 1.0, o.scale_given = true; // the Gaussian-optimal scale means nothing for user data

  char device[256] = "";
  if (fnceGetDeviceName(be, device, sizeof device) != FNCE_SUCCESS)
    std::snprintf(device, sizeof device, "unknown device");
  static const char* const kSim[] = {"dot", "cosine", "negsqdist"};
  std::printf("# FlashNCE demo  backend: %s (%s)\n",
              be == FNCE_BACKEND_CUDA   ? "cuda"
              : be == FNCE_BACKEND_HOST ? "host"
                                        : "cpu",
              device);
  if (o.npy.empty())
    std::printf("# data: z ~ N(0, I_%lld), z' = %.3g z + sqrt(1 - %.3g^2) eps, seed %llu\n",
                static_cast<long long>(o.d), o.rho, o.rho, static_cast<unsigned long long>(o.seed));
  else
    std::printf("# data: %s%s%s\n", o.npy[0].c_str(), o.npy.size() > 1 ? " " : " (stacked views)",
                o.npy.size() > 1 ? o.npy[1].c_str() : "");
  std::printf("# critic: %s, logit scale %.6g%s\n", kSim[o.similarity], default_scale(o),
              o.similarity == FNCE_SIM_NEG_SQ_DIST && o.npy.empty() ? " (a = z/rho, b = z')" : "");
  std::printf("# MI bound = log N - InfoNCE (never above log N); ELBO = -VAE-prior loss\n");
  std::printf("%8s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n", "N", "log_N", "true_MI",
              "InfoNCE", "MI_bound", "CLIP", "NT-Xent", "VAE-prior", "ELBO", "time_ms");

  try {
    std::mt19937_64 rng(o.seed);
    std::vector<Batch> batches;
    if (!o.npy.empty())
      batches.push_back(npy_batch(o));
    else
      for (int64_t n : o.sizes)
        batches.push_back(gaussian_batch(n, o, rng));
    for (const Batch& batch : batches) {
      const Row row = run_batch(batch, o, be);
      const double log_n = std::log(static_cast<double>(batch.n));
      std::printf("%8lld", static_cast<long long>(batch.n));
      print_value(log_n);
      print_value(batch.true_mi);
      print_value(row.infonce);
      print_value(log_n - row.infonce);
      print_value(row.clip);
      print_value(row.nt_xent);
      print_value(row.vae_prior);
      print_value(-row.vae_prior);
      std::printf(" %10.1f\n", 1e3 * row.seconds);
      std::fflush(stdout);
    }
  } catch (const flashnce::Error& e) {
    std::fprintf(stderr, "flashnce_demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
