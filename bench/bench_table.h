// Results of a benchmark run: one Row per (shape, variant); CSV in and out; the compact table
// (shape | fused ms | naive ms | GEMM-floor ms | TFLOP/s | extra memory) that device-check prints.
#pragma once

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace flashnce::bench {

// Variants, in table order: fused_fwd, fused_fwdbwd, naive_fwd, naive_fwdbwd, torch_fwd,
// torch_fwdbwd, gemm, cpu_fwd, cpu_fwdbwd.
struct Row {
  std::string loss, dtype;
  int64_t n = 0, m = 0, d = 0;
  std::string variant;
  std::string status = "ok";        // ok | skipped
  double ms = 0;                    // median time per call
  double flop = 0;                  // GEMM-equivalent FLOPs per call (2·n·m·d × 1 or 3)
  double extra_bytes = -1;          // by accounting (workspace + LSEs; logits + dlogits + scratch)
  double extra_bytes_measured = -1; // cudaMemGetInfo before / after the first call
  std::string note;                 // why skipped, or a remark
};

// The benchmark named `name` measures `row` (its key, variant, flop, memory); the reporter fills
// in the time and the status.  Memory counters may be updated by the benchmark body later.
void describe(const std::string& name, const Row& row);
void set_memory(const std::string& name, double accounted, double measured);

// Console output as usual, plus collection of the median of every described benchmark.
class TableReporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run>& reports) override;
  std::vector<Row> rows() const;
  bool any_error() const { return any_error_; }
  // Appends every completed row to a CSV (header first), flushed at once.
  bool open_csv(const std::string& path);

private:
  void write_row(const std::string& name, const Row& row);
  bool any_error_ = false;
  std::FILE* csv_ = nullptr;
  std::set<std::string> written_;
};

bool write_csv(const std::string& path, const std::vector<Row>& rows);
std::string csv_header();
std::string csv_line(const Row& r);
bool read_csv(const std::string& path, std::vector<Row>* rows, std::string* error);
// Markdown table, one line per (loss, dtype, n, m, d), notes for skipped cells below it.
std::string format_table(const std::vector<Row>& rows);

} // namespace flashnce::bench
