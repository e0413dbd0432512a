// libFuzzer target over the public C API (DESIGN.md §2): decodes its bytes into an fnceLossParams
// (every enum including out-of-range values, sizes 0 / negative / huge / overflowing, strides < d,
// NULL and aliased pointers, struct_size variants, NaN/Inf data and scale, targets out of range),
// allocates canary-filled buffers sized from the decoded shape, and calls the workspace-size,
// forward and backward entry points.  It checks the contract itself, not only "no crash":
//  - a non-success status leaves every output byte untouched and sets a message naming an argument;
//  - a success leaves the message empty, writes nothing past each output's documented extent
//    (col_lse untouched for ROWS) and, on finite input with moderate scale, finite outputs;
//  - forward / backward reject whatever the workspace-size query rejected (the status may differ:
//    their own arguments are checked before the workspace).
// Built against `flashnce` (the CPU reference; the CUDA entry points as this build has them).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "flashnce/flashnce.h"

namespace {

// Sequential byte reader: past the end every read is 0.
class Reader {
public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  int32_t i32() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k)
      v |= uint32_t(byte()) << (8 * k);
    int32_t r;
    std::memcpy(&r, &v, sizeof r);
    return r;
  }

private:
  const uint8_t* p_;
  const uint8_t* end_;
};

[[noreturn]] void contract_violation(const char* what, const char* call) {
  std::fprintf(stderr, "CONTRACT VIOLATION in %s: %s (message: \"%s\")\n", call, what,
               fnceGetLastErrorMessage());
  std::abort();
}

// An enum value: mostly in range (count values), sometimes just past it, sometimes any int.
// Stored through the field's bytes: loading an out-of-range value as the enum is UB in C++.
template <typename E> void decode_enum(Reader& r, E* field, int count) {
  static_assert(sizeof(E) == sizeof(int), "int-sized enums");
  const uint8_t b = r.byte();
  const int v = b < 240 ? b % (count + 1) : r.i32();
  std::memcpy(field, &v, sizeof v);
}

constexpr int64_t kSmall = 6; // n, m, d, strides small enough that each input runs in microseconds

// A size: mostly 0..kSmall, sometimes negative, huge or overflowing when multiplied.
int64_t decode_size(Reader& r) {
  static const int64_t special[] = {-1,
                                    std::numeric_limits<int64_t>::min(),
                                    std::numeric_limits<int64_t>::max(),
                                    int64_t(1) << 31,
                                    int64_t(1) << 32,
                                    int64_t(1) << 62,
                                    3037000500LL, // sqrt(2^63) rounded up
                                    (int64_t(1) << 61) + 1};
  const uint8_t b = r.byte();
  if (b < 224)
    return b % (kSmall + 1);
  return special[b % (sizeof special / sizeof special[0])];
}

bool small(int64_t v) {
  return v >= 0 && v <= kSmall;
}

// Element values by index: 0..7 in the table (finite first), others small finite numbers.
double element_value(uint8_t b) {
  static const double table[] = {0.0, 1.0, -1.0, 0.5, 2.0, NAN, INFINITY, -INFINITY};
  return b < 8 ? table[b] : (double(b) - 128.0) / 64.0;
}
bool element_finite(uint8_t b) {
  return b < 5 || b >= 8;
}

// f32 / f16 / bf16 bit pattern of element_value(b) (exact: every value is representable).
void store_element(int dtype, void* base, int64_t index, uint8_t b) {
  const double v = element_value(b);
  if (dtype == FNCE_F32) {
    const float f = float(v);
    std::memcpy(static_cast<char*>(base) + index * 4, &f, 4);
    return;
  }
  uint16_t h;
  const float f = float(v);
  if (dtype == FNCE_BF16) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    h = uint16_t(u >> 16); // exact for these values (low 16 bits zero)
  } else {
    // f16: values are k/64 with |k| <= 128, or 0, ±1, 0.5, 2, NaN, ±Inf.
    if (std::isnan(f))
      h = 0x7E00;
    else if (std::isinf(f))
      h = f > 0 ? 0x7C00 : 0xFC00;
    else if (f == 0.0f)
      h = 0;
    else {
      int e;
      const float mant = std::frexp(std::fabs(f), &e); // |f| = mant * 2^e, mant in [0.5, 1)
      const uint16_t frac = uint16_t((mant * 2.0f - 1.0f) * 1024.0f);
      h = uint16_t((f < 0 ? 0x8000 : 0) | uint16_t((e - 1 + 15) << 10) | frac);
    }
  }
  std::memcpy(static_cast<char*>(base) + index * 2, &h, 2);
}

constexpr uint8_t kCanary = 0xA5;
constexpr size_t kTail = 64; // canary bytes after every output's documented extent

// A canary-filled output buffer of `bytes` documented bytes plus a tail.
struct Output {
  std::vector<uint8_t> mem;
  size_t bytes = 0;
  bool null = false;
  void make(size_t documented, bool is_null) {
    bytes = documented;
    null = is_null;
    mem.assign(documented + kTail, kCanary);
  }
  void* ptr() { return null ? nullptr : mem.data(); }
  bool untouched() const {
    for (uint8_t c : mem)
      if (c != kCanary)
        return false;
    return true;
  }
  bool tail_untouched() const {
    for (size_t k = bytes; k < mem.size(); ++k)
      if (mem[k] != kCanary)
        return false;
    return true;
  }
  bool floats_finite(size_t count, bool allow_neg_inf = false) const {
    for (size_t k = 0; k < count; ++k) {
      float f;
      std::memcpy(&f, mem.data() + 4 * k, 4);
      if (std::isnan(f) || (std::isinf(f) && !(allow_neg_inf && f < 0)))
        return false;
    }
    return true;
  }
};

// A failure must come with a message that names an argument (or says no device / no CUDA build).
void check_failure_message(const char* call) {
  const char* msg = fnceGetLastErrorMessage();
  if (msg == nullptr || msg[0] == '\0')
    contract_violation("failure without a message", call);
  static const char* const names[] = {"params",     "struct_size", "backend",
                                      "dtype",      "similarity",  "positives",
                                      "normalizer", "direction",   "reduction",
                                      "n",          "m",           "d",
                                      "lda",        "ldb",         "a",
                                      "b",          "logit_scale", "targets",
                                      "labels_a",   "labels_b",    "loss",
                                      "row_lse",    "col_lse",     "grad_loss",
                                      "grad_b",     "workspace",   "workspace_bytes",
                                      "bytes",      "CUDA"};
  // A name counts when it appears as a whole word.
  for (const char* name : names) {
    const size_t len = std::strlen(name);
    for (const char* at = std::strstr(msg, name); at != nullptr; at = std::strstr(at + 1, name)) {
      auto word = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
      };
      const bool left = at == msg || !word(at[-1]);
      const bool right = !word(at[len]);
      if (left && right)
        return;
    }
  }
  contract_violation("failure message names no argument", call);
}

void check_success_message(const char* call) {
  const char* msg = fnceGetLastErrorMessage();
  if (msg == nullptr || msg[0] != '\0')
    contract_violation("success with a non-empty message", call);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);

  // ---- parameters --------------------------------------------------------------------------
  fnceLossParams base;
  fnceLossParamsInit(&base);
  fnceLossParams p = base;
  decode_enum(r, &p.backend, 3); // CUDA, CPU, HOST, and out-of-range values
  decode_enum(r, &p.dtype, 3);
  decode_enum(r, &p.similarity, 3);
  decode_enum(r, &p.positives, 4);
  decode_enum(r, &p.normalizer, 2);
  decode_enum(r, &p.direction, 2);
  decode_enum(r, &p.reduction, 3);
  p.exclude_self = r.byte() % 3; // 0, 1, 2 (any non-zero is on)
  p.allow_tf32 = r.byte() % 3;
  p.n = decode_size(r);
  p.m = decode_size(r);
  p.d = decode_size(r);
  p.lda = decode_size(r);
  p.ldb = decode_size(r);
  const uint8_t ptr_modes = r.byte(); // bit 0: b NULL (self mode), bit 1: b aliases a, bit 2: a
                                      // NULL, bit 3: scale NULL, bit 4: targets NULL, bit 5:
                                      // labels_a NULL, bit 6: labels_b NULL, bit 7: labels alias
  const uint8_t struct_mode = r.byte() % 5;
  const uint8_t scale_code = r.byte();
  const uint8_t out_modes = r.byte(); // NULL bits: loss, row_lse, col_lse, grad_loss, grad_a,
                                      // grad_b, grad_logit_scale, bytes
  const uint8_t ws_mode = r.byte() % 4;

  const int dt_raw = [&] {
    int v;
    std::memcpy(&v, &p.dtype, sizeof v);
    return v;
  }();
  const int dir_raw = [&] {
    int v;
    std::memcpy(&v, &p.direction, sizeof v);
    return v;
  }();
  const int red_raw = [&] {
    int v;
    std::memcpy(&v, &p.reduction, sizeof v);
    return v;
  }();
  const int pos_raw = [&] {
    int v;
    std::memcpy(&v, &p.positives, sizeof v);
    return v;
  }();
  const int be_raw = [&] {
    int v;
    std::memcpy(&v, &p.backend, sizeof v);
    return v;
  }();
  const size_t esize = dt_raw == FNCE_F32 ? 4 : 2;
  const bool self_mode = (ptr_modes & 1) != 0;

  // Buffers are sized from the decoded shape when it is small; otherwise every buffer is tiny
  // and forward / backward are called only if the workspace query already rejected the shape.
  const bool shape_small = small(p.n) && small(p.m) && small(p.d) && small(p.lda) && small(p.ldb);
  const int64_t n = shape_small ? p.n : 1, d = shape_small ? p.d : 1;
  const int64_t m = shape_small ? (self_mode ? p.n : p.m) : 1;
  const int64_t lda = shape_small ? (p.lda == 0 ? p.d : p.lda) : 1;
  const int64_t ldb = shape_small ? (self_mode ? lda : (p.ldb == 0 ? p.d : p.ldb)) : 1;
  const int64_t rows_a = n, rows_b = m;

  // Inputs: in-row elements from the bytes, padding (stride > d) NaN: a read of it shows up as
  // a non-finite output.
  bool inputs_finite = true;
  auto fill = [&](int64_t rows, int64_t ld) {
    std::vector<uint8_t> buf(size_t(std::max<int64_t>(rows * std::max(ld, d), 1)) * 4 + 16);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t k = 0; k < std::max(ld, d); ++k) {
        const uint8_t b = k < d ? r.byte() : uint8_t(5); // 5: NaN
        if (k < d && !element_finite(b))
          inputs_finite = false;
        store_element(dt_raw == FNCE_F32 ? FNCE_F32 : dt_raw, buf.data(), i * ld + k, b);
      }
    return buf;
  };
  std::vector<uint8_t> a_buf = fill(rows_a, lda);
  std::vector<uint8_t> b_buf =
      self_mode || (ptr_modes & 2) ? std::vector<uint8_t>() : fill(rows_b, ldb);
  p.a = (ptr_modes & 4) ? nullptr : a_buf.data();
  p.b = self_mode ? nullptr : (ptr_modes & 2) ? a_buf.data() : b_buf.data();
  if ((ptr_modes & 2) && !self_mode && (rows_b > rows_a || ldb != lda))
    p.b = nullptr, p.m = p.n; // aliasing needs b's extent inside a's: fall back to self mode
  const bool self = p.b == nullptr;

  static const float scales[] = {1.0f, 0.5f, 10.0f, 100.0f, 0.0f, -1.0f, NAN, INFINITY, 1e30f};
  float scale = scales[scale_code % 9];
  const bool scale_moderate = std::isfinite(scale) && std::fabs(scale) <= 100.0f;
  p.logit_scale = (ptr_modes & 8) ? nullptr : &scale;

  const int64_t mm = self ? n : m;
  std::vector<int64_t> targets(size_t(n) + 1), labels_a(size_t(n) + 1), labels_b(size_t(mm) + 1);
  bool targets_in_range = true;
  for (auto& t : targets) {
    const uint8_t b = r.byte();
    t = b < 200   ? int64_t(b % (mm + 1)) - 1 /* -1..m-1 */
        : b < 250 ? mm + b % 3
                  : std::numeric_limits<int64_t>::min();
  }
  for (int64_t i = 0; i < n; ++i)
    if (targets[size_t(i)] >= mm)
      targets_in_range = false;
  for (auto& l : labels_a)
    l = r.byte() % 4 - 1;
  for (auto& l : labels_b)
    l = r.byte() % 4 - 1;
  p.targets = (ptr_modes & 16) ? nullptr : targets.data();
  p.labels_a = (ptr_modes & 32) ? nullptr : labels_a.data();
  p.labels_b = (ptr_modes & 64) ? nullptr : (ptr_modes & 128) ? labels_a.data() : labels_b.data();
  if ((ptr_modes & 128) && mm > n)
    p.labels_b = labels_b.data(); // an alias must cover m entries

  // struct_size: exact, 0, one field short, larger (a newer header), tiny.
  std::vector<uint8_t> struct_mem(sizeof p + 64, 0x5A);
  switch (struct_mode) {
  case 1:
    p.struct_size = 0;
    break;
  case 2:
    p.struct_size = sizeof p - 8;
    break;
  case 3:
    p.struct_size = sizeof p + 64;
    break;
  case 4:
    p.struct_size = 1;
    break;
  default:
    break;
  }
  std::memcpy(struct_mem.data(), &p, sizeof p);
  const fnceLossParams* pp = reinterpret_cast<const fnceLossParams*>(struct_mem.data());
  if (r.byte() == 255)
    pp = nullptr;

  const bool symmetric = dir_raw == FNCE_DIRECTION_SYMMETRIC;
  const int64_t loss_count = red_raw == FNCE_REDUCTION_NONE ? (symmetric ? n + mm : n) : 1;

  // ---- workspace-size queries --------------------------------------------------------------
  fnceStatus_t ws_status[2];
  size_t ws_bytes[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    const char* call = k == 0 ? "fnceForwardWorkspaceSize" : "fnceBackwardWorkspaceSize";
    Output bytes_out;
    bytes_out.make(sizeof(size_t), (out_modes & 128) != 0);
    const fnceStatus_t s =
        k == 0 ? fnceForwardWorkspaceSize(pp, static_cast<size_t*>(bytes_out.ptr()))
               : fnceBackwardWorkspaceSize(pp, static_cast<size_t*>(bytes_out.ptr()));
    ws_status[k] = s;
    if (s != FNCE_SUCCESS) {
      check_failure_message(call);
      if (!bytes_out.untouched())
        contract_violation("failure wrote *bytes", call);
    } else {
      check_success_message(call);
      if (bytes_out.null)
        contract_violation("success with bytes == NULL", call);
      std::memcpy(&ws_bytes[k], bytes_out.mem.data(), sizeof(size_t));
      if (!bytes_out.tail_untouched())
        contract_violation("wrote past *bytes", call);
      if (be_raw == FNCE_BACKEND_CPU && ws_bytes[k] != 0)
        contract_violation("CPU workspace is not 0 bytes", call);
    }
  }
  const bool bytes_null = (out_modes & 128) != 0;
  // Forward / backward run only on buffers the decoded shape fits, or where validation must
  // already have failed (a shape the size query rejected for a reason other than `bytes`).
  const bool may_call = shape_small || (!bytes_null && ws_status[0] != FNCE_SUCCESS);
  if (!may_call)
    return 0;

  auto workspace_for = [&](size_t needed, std::vector<uint8_t>& mem, size_t* bytes) -> void* {
    switch (ws_mode) {
    case 1:
      *bytes = 0;
      return nullptr;
    case 2:
      *bytes = needed > 0 ? needed - 1 : 0;
      mem.assign(*bytes + 1, 0);
      return mem.data();
    case 3:
      *bytes = needed;
      return nullptr;
    default:
      *bytes = needed;
      mem.assign(needed + 1, 0);
      return mem.data();
    }
  };

  // ---- forward -----------------------------------------------------------------------------
  Output loss, row_lse, col_lse;
  loss.make(size_t(loss_count) * 4, (out_modes & 1) != 0);
  row_lse.make(size_t(n) * 4, (out_modes & 2) != 0);
  col_lse.make(symmetric ? size_t(mm) * 4 : 0, (out_modes & 4) != 0);
  std::vector<uint8_t> ws;
  size_t wsb = 0;
  void* wsp = workspace_for(ws_status[0] == FNCE_SUCCESS ? ws_bytes[0] : 0, ws, &wsb);
  const fnceStatus_t fs =
      fnceForward(pp, static_cast<float*>(loss.ptr()), static_cast<float*>(row_lse.ptr()),
                  static_cast<float*>(col_lse.ptr()), wsp, wsb, nullptr);
  if (!bytes_null && ws_status[0] != FNCE_SUCCESS && fs == FNCE_SUCCESS)
    contract_violation("forward accepted what its workspace query rejected", "fnceForward");
  if (fs != FNCE_SUCCESS) {
    check_failure_message("fnceForward");
    if (!loss.untouched() || !row_lse.untouched() || !col_lse.untouched())
      contract_violation("failure wrote an output", "fnceForward");
  } else {
    check_success_message("fnceForward");
    if (!loss.tail_untouched() || !row_lse.tail_untouched() || !col_lse.tail_untouched())
      contract_violation("wrote past an output's extent (or col_lse for ROWS)", "fnceForward");
    const bool finite_case =
        inputs_finite && scale_moderate && (pos_raw != FNCE_POSITIVES_TARGETS || targets_in_range);
    if (finite_case && !loss.floats_finite(size_t(loss_count)))
      contract_violation("finite input gave a non-finite loss", "fnceForward");
    if (finite_case && !row_lse.null && !row_lse.floats_finite(size_t(n), /*allow -inf*/ true))
      contract_violation("finite input gave a NaN/+inf row_lse", "fnceForward");
  }

  // ---- backward ----------------------------------------------------------------------------
  std::vector<float> lse_in(size_t(n + mm) + 1, 0.0f), grad_loss_in(size_t(loss_count) + 1);
  if (fs == FNCE_SUCCESS && !row_lse.null)
    std::memcpy(lse_in.data(), row_lse.mem.data(), size_t(n) * 4);
  // The column LSEs too (SYMMETRIC): backends that read the saved LSEs (CUDA, host) need the
  // forward's, not zeros, for the finite-output check below to hold.
  if (fs == FNCE_SUCCESS && symmetric && !col_lse.null)
    std::memcpy(lse_in.data() + n, col_lse.mem.data(), size_t(mm) * 4);
  for (auto& g : grad_loss_in)
    g = float(element_value(uint8_t(8 + r.byte() % 128))); // finite, in [-2, 0)
  const bool lse_null = (out_modes & 2) != 0, gl_null = (out_modes & 8) != 0;
  Output grad_a, grad_b, grad_scale;
  grad_a.make(size_t(n * d) * esize, (out_modes & 16) != 0);
  grad_b.make(size_t(mm * d) * esize, (out_modes & 32) != 0 || (self && !(r.byte() & 1)));
  grad_scale.make(4, (out_modes & 64) != 0);
  void* wsp2 = workspace_for(ws_status[1] == FNCE_SUCCESS ? ws_bytes[1] : 0, ws, &wsb);
  const fnceStatus_t bs = fnceBackward(
      pp, lse_null ? nullptr : lse_in.data(), (out_modes & 4) ? nullptr : lse_in.data() + n,
      gl_null ? nullptr : grad_loss_in.data(), grad_a.ptr(), grad_b.ptr(),
      static_cast<float*>(grad_scale.ptr()), wsp2, wsb, nullptr);
  static const bool trace = std::getenv("FLASHNCE_FUZZ_TRACE") != nullptr;
  if (trace) // one line per input: what was called and what came back
    std::fprintf(stderr,
                 "trace: backend %d n %lld m %lld d %lld forward %d backward %d ws %zu/%zu\n",
                 be_raw, static_cast<long long>(p.n), static_cast<long long>(p.m),
                 static_cast<long long>(p.d), int(fs), int(bs), ws_bytes[0], ws_bytes[1]);
  if (!bytes_null && ws_status[1] != FNCE_SUCCESS && bs == FNCE_SUCCESS)
    contract_violation("backward accepted what its workspace query rejected", "fnceBackward");
  if (bs != FNCE_SUCCESS) {
    check_failure_message("fnceBackward");
    if (!grad_a.untouched() || !grad_b.untouched() || !grad_scale.untouched())
      contract_violation("failure wrote an output", "fnceBackward");
  } else {
    check_success_message("fnceBackward");
    if (!grad_a.tail_untouched() || !grad_b.tail_untouched() || !grad_scale.tail_untouched())
      contract_violation("wrote past an output's extent", "fnceBackward");
    const bool finite_case = fs == FNCE_SUCCESS && inputs_finite && scale_moderate &&
                             (pos_raw != FNCE_POSITIVES_TARGETS || targets_in_range) &&
                             (esize == 4 || std::fabs(scale) <= 10.0f);
    if (finite_case && !grad_scale.null && !grad_scale.floats_finite(1))
      contract_violation("finite input gave a non-finite grad_logit_scale", "fnceBackward");
    if (finite_case && esize == 4 && !grad_a.null && !grad_a.floats_finite(size_t(n * d)))
      contract_violation("finite input gave a non-finite grad_a", "fnceBackward");
  }
  return 0;
}
