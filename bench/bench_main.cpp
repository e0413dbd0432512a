// flashnce_bench / flashnce_bench_cpu: Google Benchmark with a few flags of our own (stripped
// before benchmark::Initialize sees the command line):
//   --fnce_full         the full GPU matrix: 4 losses × {bf16, f16, f32} × n ∈ {1k, 4k, 16k, 64k}
//                       × d ∈ {128, 512, 1024} (default: a subset that runs in a few minutes)
//   --fnce_max_n=N      drop GPU shapes with n > N
//   --fnce_n=N [--fnce_d=D] [--fnce_dtype=bf16|f16|f32]   instead: every loss at that one shape
//   --fnce_cpu          also run the CPU reference rows when a GPU is present
//   --fnce_smoke        two tiny CPU shapes, one iteration each (the CTest smoke test)
//   --fnce_strict       exit 1 when a naive, GEMM or CPU row was skipped (fused rows may skip
//                       with their reason by design, e.g. a backend that does not support them)
//   --fnce_csv=PATH     write the results as CSV (bench/README.md: the format)
//   --fnce_table=PATH   write the compact table (Markdown); it is always printed last
//   --fnce_merge=A,B    read result CSVs (e.g. ours and torch_baseline.py's), print their table
//   --fnce_title=TEXT   the heading of the table (default: device and method)
// Every --benchmark_* flag works as usual (--benchmark_filter=clip/bf16, --benchmark_out=...).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/bench_setup.h"
#include "bench/bench_table.h"

namespace {

using flashnce::bench::Options;

bool starts_with(const char* s, const char* prefix) {
  return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

// Parses and removes our flags; returns false (with a message) on a bad one.
bool parse_options(int* argc, char** argv, Options* o) {
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const char* a = argv[i];
    if (!starts_with(a, "--fnce_")) {
      if (starts_with(a, "--benchmark_repetitions"))
        o->user_repetitions = true;
      if (starts_with(a, "--benchmark_min_time"))
        o->user_min_time = true;
      argv[out++] = argv[i];
      continue;
    }
    if (!std::strcmp(a, "--fnce_full"))
      o->full = true;
    else if (!std::strcmp(a, "--fnce_smoke"))
      o->smoke = true;
    else if (!std::strcmp(a, "--fnce_strict"))
      o->strict = true;
    else if (!std::strcmp(a, "--fnce_cpu"))
      o->cpu = true;
    else if (starts_with(a, "--fnce_max_n="))
      o->max_n = std::atoll(a + 13);
    else if (starts_with(a, "--fnce_n="))
      o->n = std::atoll(a + 9);
    else if (starts_with(a, "--fnce_d="))
      o->d = std::atoll(a + 9);
    else if (!std::strcmp(a, "--fnce_dtype=bf16"))
      o->dtype = FNCE_BF16;
    else if (!std::strcmp(a, "--fnce_dtype=f16"))
      o->dtype = FNCE_F16;
    else if (!std::strcmp(a, "--fnce_dtype=f32"))
      o->dtype = FNCE_F32;
    else if (starts_with(a, "--fnce_csv="))
      o->csv = a + 11;
    else if (starts_with(a, "--fnce_table="))
      o->table = a + 13;
    else if (starts_with(a, "--fnce_title="))
      o->title = a + 13;
    else if (starts_with(a, "--fnce_merge=")) {
      std::stringstream ss(a + 13);
      std::string path;
      while (std::getline(ss, path, ','))
        if (!path.empty())
          o->merge.push_back(path);
    } else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of bench_main.cpp)\n", a);
      return false;
    }
  }
  *argc = out;
  argv[out] = nullptr;
  return true;
}

int print_table(const std::vector<flashnce::bench::Row>& rows, const Options& o,
                std::string heading) {
  if (!o.title.empty())
    heading = o.title;
  const std::string table = flashnce::bench::format_table(rows);
  std::printf("\n%s\n\n%s", heading.c_str(), table.c_str());
  std::fflush(stdout);
  if (!o.table.empty()) {
    std::ofstream f(o.table);
    f << heading << "\n\n" << table;
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", o.table.c_str());
      return 1;
    }
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(&argc, argv, &o))
    return 2;

  if (!o.merge.empty()) {
    std::vector<flashnce::bench::Row> rows;
    for (const std::string& path : o.merge) {
      std::string error;
      if (!flashnce::bench::read_csv(path, &rows, &error)) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
      }
    }
    return print_table(rows, o,
                       "FlashNCE benchmark (merged: " + std::to_string(o.merge.size()) +
                           " result files)");
  }

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 2;

  std::string heading;
  bool cpu = true;
#if defined(FLASHNCE_BENCH_GPU)
  std::string why_not;
  if (!o.smoke && flashnce::bench::register_gpu_benchmarks(o, &why_not)) {
    cpu = o.cpu;
    char device[256] = "?";
    fnceGetDeviceName(FNCE_BACKEND_CUDA, device, sizeof device);
    heading = std::string("FlashNCE benchmark on ") + device +
              " (median of the repetitions; CUDA events)";
  } else {
    std::printf("%s: running the CPU reference on small shapes instead (no GPU rows)\n",
                o.smoke ? "smoke run" : why_not.c_str());
    heading = "FlashNCE benchmark: CPU reference (f64) on small shapes, no GPU rows (" +
              (o.smoke ? std::string("smoke run") : why_not) + ")";
  }
#else
  std::printf("flashnce_bench_cpu: built without nvcc; running the CPU reference on small shapes "
              "(no GPU rows)\n");
  heading = "FlashNCE benchmark: CPU reference (f64) on small shapes, no GPU rows";
#endif
  if (cpu)
    flashnce::bench::register_cpu_benchmarks(o);

  flashnce::bench::TableReporter reporter;
  // Rows go to the CSV as they complete, so that a run cut short keeps what it measured.
  if (!o.csv.empty() && !reporter.open_csv(o.csv)) {
    std::fprintf(stderr, "cannot write %s\n", o.csv.c_str());
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  const auto rows = reporter.rows();
  if (print_table(rows, o, heading) != 0)
    return 1;
  if (rows.empty()) {
    std::fprintf(stderr, "no benchmark ran (check --benchmark_filter)\n");
    return 1;
  }
  if (o.strict) {
    int bad = 0;
    for (const auto& r : rows)
      if (r.status != "ok" && r.variant.rfind("fused", 0) != 0) {
        std::fprintf(stderr, "strict: %s/%s/n:%lld/d:%lld/%s skipped: %s\n", r.loss.c_str(),
                     r.dtype.c_str(), (long long)r.n, (long long)r.d, r.variant.c_str(),
                     r.note.c_str());
        ++bad;
      }
    if (bad)
      return 1;
  }
  return reporter.any_error() ? 1 : 0;
}
