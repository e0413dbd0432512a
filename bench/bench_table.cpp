#include "bench/bench_table.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <tuple>

namespace flashnce::bench {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, Row> described; // by benchmark (function) name
  std::map<std::string, Row> measured;
  std::vector<std::string> order;
};

Registry& registry() {
  static Registry r;
  return r;
}

const char* const kVariants[] = {"fused_fwd",    "fused_fwdbwd", "naive_fwd",
                                 "naive_fwdbwd", "torch_fwd",    "torch_fwdbwd",
                                 "gemm",         "cpu_fwd",      "cpu_fwdbwd"};

double to_ms(double t, benchmark::TimeUnit u) {
  switch (u) {
  case benchmark::kNanosecond:
    return t * 1e-6;
  case benchmark::kMicrosecond:
    return t * 1e-3;
  case benchmark::kMillisecond:
    return t;
  default:
    return t * 1e3; // seconds
  }
}

std::string clean(std::string s) { // one CSV field: no commas, no newlines
  for (char& c : s)
    if (c == ',' || c == '\n' || c == '\r')
      c = ';';
  return s;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

} // namespace

void describe(const std::string& name, const Row& row) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.described.count(name))
    r.order.push_back(name);
  r.described[name] = row;
}

void set_memory(const std::string& name, double accounted, double measured) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.described.find(name);
  if (it == r.described.end())
    return;
  it->second.extra_bytes = accounted;
  it->second.extra_bytes_measured = measured;
}

void TableReporter::ReportRuns(const std::vector<Run>& reports) {
  ConsoleReporter::ReportRuns(reports);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const Run& run : reports) {
    const std::string name = run.run_name.function_name;
    auto it = r.described.find(name);
    if (it == r.described.end())
      continue;
    Row row = it->second;
    if (run.error_occurred) {
      row.status = "skipped";
      row.note = run.error_message;
      if (row.variant.rfind("cpu", 0) == 0)
        any_error_ = true; // the CPU rows never skip
      r.measured[name] = row;
      continue;
    }
    // The median of the repetitions; a single run (no aggregates) stands for itself.
    const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
    if (!median && !single)
      continue;
    row.ms = to_ms(run.GetAdjustedRealTime(), run.time_unit);
    r.measured[name] = row;
    write_row(name, row);
  }
}

std::vector<Row> TableReporter::rows() const {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<Row> out;
  for (const std::string& name : r.order) {
    auto it = r.measured.find(name);
    if (it != r.measured.end())
      out.push_back(it->second);
  }
  return out;
}

std::string csv_header() {
  return "loss,dtype,n,m,d,variant,status,ms,flop,extra_bytes,extra_bytes_measured,note\n";
}

std::string csv_line(const Row& r) {
  std::ostringstream f;
  f << clean(r.loss) << ',' << clean(r.dtype) << ',' << r.n << ',' << r.m << ',' << r.d << ','
    << clean(r.variant) << ',' << clean(r.status) << ',' << fmt("%.6g", r.ms) << ','
    << fmt("%.6g", r.flop) << ',' << fmt("%.0f", r.extra_bytes) << ','
    << fmt("%.0f", r.extra_bytes_measured) << ',' << clean(r.note) << '\n';
  return f.str();
}

bool write_csv(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream f(path);
  if (!f)
    return false;
  f << csv_header();
  for (const Row& r : rows)
    f << csv_line(r);
  return bool(f);
}

void TableReporter::write_row(const std::string& name, const Row& row) {
  if (!csv_ || !written_.insert(name).second)
    return; // once per benchmark
  std::fputs(csv_line(row).c_str(), csv_);
  std::fflush(csv_);
}

bool TableReporter::open_csv(const std::string& path) {
  if (csv_)
    std::fclose(csv_);
  csv_ = std::fopen(path.c_str(), "w");
  if (!csv_)
    return false;
  std::fputs(csv_header().c_str(), csv_);
  std::fflush(csv_);
  return true;
}

bool read_csv(const std::string& path, std::vector<Row>* rows, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    *error = "cannot open " + path;
    return false;
  }
  std::string line;
  std::getline(f, line); // header
  int lineno = 1;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty())
      continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, ','))
      fields.push_back(field);
    if (fields.size() == 11)
      fields.push_back(""); // empty note
    if (fields.size() != 12) {
      *error = path + ":" + std::to_string(lineno) + ": expected 12 fields, got " +
               std::to_string(fields.size());
      return false;
    }
    try {
      Row r;
      r.loss = fields[0];
      r.dtype = fields[1];
      r.n = std::stoll(fields[2]);
      r.m = std::stoll(fields[3]);
      r.d = std::stoll(fields[4]);
      r.variant = fields[5];
      r.status = fields[6];
      r.ms = std::stod(fields[7]);
      r.flop = std::stod(fields[8]);
      r.extra_bytes = std::stod(fields[9]);
      r.extra_bytes_measured = std::stod(fields[10]);
      r.note = fields[11];
      rows->push_back(r);
    } catch (const std::exception&) {
      *error = path + ":" + std::to_string(lineno) + ": malformed number";
      return false;
    }
  }
  return true;
}

std::string format_table(const std::vector<Row>& rows) {
  using Key = std::tuple<std::string, std::string, int64_t, int64_t, int64_t>;
  std::vector<Key> keys;
  std::map<Key, std::map<std::string, Row>> cells;
  std::set<std::string> present;
  for (const Row& r : rows) {
    Key k{r.loss, r.dtype, r.n, r.m, r.d};
    if (!cells.count(k))
      keys.push_back(k);
    cells[k][r.variant] = r;
    present.insert(r.variant);
  }
  auto has = [&](const char* v) { return present.count(v) > 0; };
  std::vector<std::string> notes;
  auto note_ref = [&](const std::string& note) {
    for (size_t i = 0; i < notes.size(); ++i)
      if (notes[i] == note)
        return i + 1;
    notes.push_back(note);
    return notes.size();
  };
  auto ms = [&](const std::map<std::string, Row>& c, const char* v) -> std::string {
    auto it = c.find(v);
    if (it == c.end())
      return "-";
    if (it->second.status != "ok")
      return "skip[" + std::to_string(note_ref(it->second.note)) + "]";
    return fmt(it->second.ms < 10 ? "%.3f" : "%.1f", it->second.ms);
  };
  auto ok = [&](const std::map<std::string, Row>& c, const char* v, const Row** out) {
    auto it = c.find(v);
    if (it == c.end() || it->second.status != "ok" || it->second.ms <= 0)
      return false;
    *out = &it->second;
    return true;
  };
  auto mib = [&](const std::map<std::string, Row>& c, const char* v) -> std::string {
    auto it = c.find(v);
    if (it == c.end() || it->second.extra_bytes < 0)
      return "-";
    std::string s = fmt("%.4g", it->second.extra_bytes / 1048576.0);
    if (it->second.extra_bytes_measured >= 0)
      s += " (" + fmt("%.4g", it->second.extra_bytes_measured / 1048576.0) + ")";
    return s;
  };

  std::ostringstream t;
  std::vector<std::pair<std::string, std::string>> cols; // header, variant
  t << "| loss | dtype | n | m | d |";
  const std::pair<const char*, const char*> time_cols[] = {
      {"fused fwd ms", "fused_fwd"},   {"fused f+b ms", "fused_fwdbwd"},
      {"naive fwd ms", "naive_fwd"},   {"naive f+b ms", "naive_fwdbwd"},
      {"torch fwd ms", "torch_fwd"},   {"torch f+b ms", "torch_fwdbwd"},
      {"GEMM floor ms", "gemm"},       {"cpu-ref fwd ms", "cpu_fwd"},
      {"cpu-ref f+b ms", "cpu_fwdbwd"}};
  for (auto& c : time_cols)
    if (has(c.second)) {
      t << ' ' << c.first << " |";
      cols.emplace_back(c.first, c.second);
    }
  const bool fused = has("fused_fwd") || has("fused_fwdbwd");
  const bool gpu = fused || has("naive_fwd") || has("gemm");
  if (gpu) {
    t << " fwd ÷ GEMM | naive f+b ÷ fused f+b | fused f+b TFLOP/s | naive f+b TFLOP/s |"
         " GEMM TFLOP/s | fused extra MiB (meas.) | naive extra MiB (meas.) |";
  }
  t << "\n|";
  const size_t ncols = 5 + cols.size() + (gpu ? 7 : 0);
  for (size_t i = 0; i < ncols; ++i)
    t << "---|";
  t << "\n";
  for (const Key& k : keys) {
    const auto& c = cells[k];
    t << "| " << std::get<0>(k) << " | " << std::get<1>(k) << " | " << std::get<2>(k) << " | "
      << std::get<3>(k) << " | " << std::get<4>(k) << " |";
    for (auto& col : cols)
      t << ' ' << ms(c, col.second.c_str()) << " |";
    if (gpu) {
      const Row *ff = nullptr, *fb = nullptr, *nb = nullptr, *g = nullptr;
      const bool has_ff = ok(c, "fused_fwd", &ff), has_fb = ok(c, "fused_fwdbwd", &fb);
      const bool has_nb = ok(c, "naive_fwdbwd", &nb), has_g = ok(c, "gemm", &g);
      auto tflops = [](const Row* r) { return fmt("%.3g", r->flop / (r->ms * 1e-3) / 1e12); };
      t << ' ' << (has_ff && has_g ? fmt("%.2f", ff->ms / g->ms) : "-") << " |";
      t << ' ' << (has_fb && has_nb ? fmt("%.2f", nb->ms / fb->ms) : "-") << " |";
      t << ' ' << (has_fb ? tflops(fb) : "-") << " |";
      t << ' ' << (has_nb ? tflops(nb) : "-") << " |";
      t << ' ' << (has_g ? tflops(g) : "-") << " |";
      t << ' ' << mib(c, "fused_fwdbwd") << " |";
      t << ' ' << mib(c, "naive_fwdbwd") << " |";
    }
    t << "\n";
  }
  for (size_t i = 0; i < notes.size(); ++i)
    t << "\n[" << i + 1 << "] " << notes[i];
  if (!notes.empty())
    t << "\n";
  return t.str();
}

} // namespace flashnce::bench
