// CPU reference backend: plain loops in double, written to be read.  This is the oracle every other
// backend is tested against (DESIGN.md §1, §4).
//
// Math (per row i; columns are the same on the transposed problem, see below):
//   sim_ij = a_i·b_j | a_i·b_j / (max(‖a_i‖,1e-12)·max(‖b_j‖,1e-12)) | −‖a_i − b_j‖²
//   s_ij   = scale · sim_ij
//   P(i)   = positives (DIAGONAL j = i, TARGETS j = targets[i], LABELS equal labels,
//            VIEW_PAIRS j = (i + n/2) mod n), minus j = i under exclude_self
//   Z(i)   = all j, minus j = i under exclude_self, minus P(i) under NORMALIZER_NEGATIVES
//   ℓ_i    = LSE_{j∈Z(i)} s_ij [− log|Z(i)| for NEGATIVES] − mean_{p∈P(i)} s_ip
//   dℓ_i/ds_ij = [j∈Z(i)]·exp(s_ij − LSE_i) − [j∈P(i)]/|P(i)|
// SYMMETRIC builds the same loss over the columns of the same logits: column j has positives
// {i : j ∈ P(i)} and normaliser {i : j ∈ Z(i)} (the predicates are symmetric in what they remove).
// G_ij = dL/ds_ij collects the row and column terms with the reduction's weights; then
//   grad_a_i = Σ_j G_ij·scale·∂sim_ij/∂a_i,  grad_b_j = Σ_i G_ij·scale·∂sim_ij/∂b_j,
//   grad_logit_scale = Σ_ij G_ij·sim_ij.
//
// Edge-case rules (the same on every backend):
//   - A row is valid when it has ≥ 1 positive and a non-empty normaliser; other rows give loss 0,
//     gradient 0 and are not counted by MEAN.  No valid row at all: MEAN gives 0, gradients 0.
//   - TARGETS: target < 0 leaves the row without positives (invalid).  target ≥ m "poisons" the
//     row: it counts as valid, its loss is NaN and its dℓ_i/ds_ij is NaN for every j (so grad_a
//     row i, every grad_b row touched by it and grad_logit_scale are NaN).  Its row_lse is the LSE
//     over Z(i) computed with no column matching the target.
//   - A non-finite scale makes every output NaN (loss, LSEs, gradients, grad_logit_scale).
//   - NaN/Inf inputs propagate: an LSE whose largest term is +inf or NaN is NaN.
//
// Memory: O((n + m)·d) doubles for the converted inputs and the gradients, O(n + m) per-line
// buffers; nothing n×m.  All indices are int64_t (n·m may exceed 2^31).
#include "host/reference/reference_f64.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

#include "host/dtype.h"
#include "host/error.h"

namespace flashnce {
namespace reference {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kCosineEps = 1e-12; // max(‖x‖, eps) in COSINE, as torch.nn.functional.normalize

// The problem's structure and its inputs in double: similarities, their gradients, and the
// positive / normaliser predicates.
class Pairs {
public:
  Pairs(const Problem& pr, const InputsF64& in)
      : p_(pr.p), n_(pr.p.n), m_(pr.p.m), d_(pr.p.d), a_(in.a.data()),
        b_(pr.self_mode ? in.a.data() : in.b.data()), scale_(in.scale) {
    if (p_.similarity == FNCE_SIM_COSINE) {
      a_norm_ = norms(a_, n_);
      b_norm_ = norms(b_, m_);
    }
  }

  int64_t n() const { return n_; }
  int64_t m() const { return m_; }
  int64_t d() const { return d_; }
  double scale() const { return scale_; }

  double sim(int64_t i, int64_t j) const {
    const double* x = a_ + i * d_;
    const double* y = b_ + j * d_;
    double acc = 0.0;
    switch (p_.similarity) {
    case FNCE_SIM_DOT:
      for (int64_t k = 0; k < d_; ++k)
        acc += x[k] * y[k];
      return acc;
    case FNCE_SIM_COSINE:
      for (int64_t k = 0; k < d_; ++k)
        acc += x[k] * y[k];
      return acc / (std::max(a_norm_[i], kCosineEps) * std::max(b_norm_[j], kCosineEps));
    case FNCE_SIM_NEG_SQ_DIST:
    default:
      for (int64_t k = 0; k < d_; ++k)
        acc += (x[k] - y[k]) * (x[k] - y[k]);
      return -acc;
    }
  }

  // ga_i += g·∂sim_ij/∂a_i and gb_j += g·∂sim_ij/∂b_j (each may be NULL).  `sim_ij` as from sim().
  // round_bits > 0 (GradRounding): the coefficient of the other side's vector, the product that a
  // gradient GEMM computes, is rounded to that many significant bits, as a GEMM on 16-bit (TF32)
  // operands does with it (COSINE: g times the other side's inverse norm, the kernels' operand);
  // the terms along the own vector (COSINE's projection, NEG_SQ_DIST's row sum) stay exact.
  void add_sim_gradient(int64_t i, int64_t j, double sim_ij, double g, double* ga_i, double* gb_j,
                        int round_bits = 0) const {
    const double* x = a_ + i * d_;
    const double* y = b_ + j * d_;
    auto r = [&](double v) { return round_bits > 0 ? round_significant(v, round_bits) : v; };
    switch (p_.similarity) {
    case FNCE_SIM_DOT: {
      const double gr = r(g);
      for (int64_t k = 0; k < d_; ++k) {
        if (ga_i)
          ga_i[k] += gr * y[k];
        if (gb_j)
          gb_j[k] += gr * x[k];
      }
      break;
    }
    case FNCE_SIM_COSINE: {
      // sim = x·y / (nx·ny), nx = max(‖x‖, eps):
      //   ∂sim/∂x = y/(nx·ny) − sim·x/nx²   (the second term only where ‖x‖ > eps: below it the
      //   clamp is constant and carries no gradient), and symmetrically for y.
      const double nx = std::max(a_norm_[i], kCosineEps);
      const double ny = std::max(b_norm_[j], kCosineEps);
      const double cx = a_norm_[i] > kCosineEps ? sim_ij / (nx * nx) : 0.0;
      const double cy = b_norm_[j] > kCosineEps ? sim_ij / (ny * ny) : 0.0;
      const double ga_y = r(g / ny) / nx, gb_x = r(g / nx) / ny; // (g / ny) / nx = g / (nx ny)
      for (int64_t k = 0; k < d_; ++k) {
        if (ga_i)
          ga_i[k] += ga_y * y[k] - g * cx * x[k];
        if (gb_j)
          gb_j[k] += gb_x * x[k] - g * cy * y[k];
      }
      break;
    }
    case FNCE_SIM_NEG_SQ_DIST:
    default: {
      // sim = −‖x − y‖²: ∂sim/∂x = −2(x − y), ∂sim/∂y = 2(x − y).
      const double gr = r(g);
      for (int64_t k = 0; k < d_; ++k) {
        if (ga_i)
          ga_i[k] += -2.0 * g * x[k] + 2.0 * gr * y[k];
        if (gb_j)
          gb_j[k] += 2.0 * gr * x[k] - 2.0 * g * y[k];
      }
      break;
    }
    }
  }

  // TARGETS with targets[i] >= m: the row's loss is NaN.
  bool poisoned(int64_t i) const {
    return p_.positives == FNCE_POSITIVES_TARGETS && p_.targets[i] >= m_;
  }

  bool excluded(int64_t i, int64_t j) const { return p_.exclude_self && i == j; }

  bool is_positive(int64_t i, int64_t j) const {
    if (excluded(i, j))
      return false;
    switch (p_.positives) {
    case FNCE_POSITIVES_DIAGONAL:
      return j == i;
    case FNCE_POSITIVES_TARGETS:
      return p_.targets[i] == j; // a negative or >= m target matches no column
    case FNCE_POSITIVES_LABELS:
      return p_.labels_a[i] == p_.labels_b[j];
    case FNCE_POSITIVES_VIEW_PAIRS:
    default:
      return j == (i + n_ / 2) % n_;
    }
  }

  bool in_normalizer(int64_t i, int64_t j) const {
    if (excluded(i, j))
      return false;
    if (p_.normalizer == FNCE_NORMALIZER_NEGATIVES && is_positive(i, j))
      return false;
    return true;
  }

private:
  std::vector<double> norms(const double* x, int64_t rows) const {
    std::vector<double> out(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t k = 0; k < d_; ++k)
        acc += x[r * d_ + k] * x[r * d_ + k];
      out[r] = std::sqrt(acc);
    }
    return out;
  }

  const fnceLossParams& p_;
  int64_t n_, m_, d_;
  const double* a_;
  const double* b_;
  double scale_;
  std::vector<double> a_norm_, b_norm_;
};

// Statistics of one row (or column) of the loss, over its normaliser and positive sets.
struct Line {
  double lse = -kInf;    // LSE over the normaliser set
  int64_t z_count = 0;   // |Z|
  int64_t p_count = 0;   // |P|
  double pos_sum = 0.0;  // Σ_{p∈P} s_p
  bool poisoned = false; // TARGETS row with target >= m

  bool valid() const { return poisoned || (p_count > 0 && z_count > 0); }

  // ℓ for a valid line, 0 for an invalid one.
  double loss(fnceNormalizer_t normalizer) const {
    if (poisoned)
      return kNaN;
    if (!valid())
      return 0.0;
    double l = lse - pos_sum / static_cast<double>(p_count);
    if (normalizer == FNCE_NORMALIZER_NEGATIVES)
      l -= std::log(static_cast<double>(z_count));
    return l;
  }

  // dℓ/ds_k for one entry of a valid, unpoisoned line.
  double dloss_ds(double s, bool in_z, bool is_pos) const {
    double g = 0.0;
    if (in_z) {
      // lse == −inf with a non-empty Z means every logit is −inf: the softmax is undefined, and
      // −inf − −inf must not be evaluated.
      g += lse == -kInf ? kNaN : std::exp(s - lse);
    }
    if (is_pos)
      g -= 1.0 / static_cast<double>(p_count);
    return g;
  }
};

// One row or column of logits with its two index sets, recomputed per line (never n×m).
struct LineBuffer {
  std::vector<double> s;       // logits along the line
  std::vector<uint8_t> in_z;   // member of the normaliser set
  std::vector<uint8_t> is_pos; // member of the positive set
  void resize(int64_t len) {
    s.resize(static_cast<size_t>(len));
    in_z.resize(static_cast<size_t>(len));
    is_pos.resize(static_cast<size_t>(len));
  }
};

// Statistics of a line from its logits and index sets.
Line make_line(const LineBuffer& buf) {
  Line line;
  double max_s = -kInf;
  bool any_nan = false;
  const size_t len = buf.s.size();
  for (size_t k = 0; k < len; ++k) {
    if (buf.is_pos[k]) {
      ++line.p_count;
      line.pos_sum += buf.s[k];
    }
    if (buf.in_z[k]) {
      ++line.z_count;
      if (std::isnan(buf.s[k]))
        any_nan = true;
      if (buf.s[k] > max_s)
        max_s = buf.s[k];
    }
  }
  if (line.z_count == 0)
    return line; // lse stays −inf
  if (any_nan) {
    line.lse = kNaN;
  } else if (max_s == -kInf) {
    line.lse = -kInf; // every term is −inf: skip the −inf − −inf below
  } else {
    // Subtract the max so that exp never overflows; max_s = +inf makes the sum NaN (Inf input).
    double sum = 0.0;
    for (size_t k = 0; k < len; ++k)
      if (buf.in_z[k])
        sum += std::exp(buf.s[k] - max_s);
    line.lse = max_s + std::log(sum);
  }
  return line;
}

Line row_line(const Pairs& pairs, int64_t i, LineBuffer& buf) {
  buf.resize(pairs.m());
  for (int64_t j = 0; j < pairs.m(); ++j) {
    buf.s[j] = pairs.scale() * pairs.sim(i, j);
    buf.in_z[j] = pairs.in_normalizer(i, j);
    buf.is_pos[j] = pairs.is_positive(i, j);
  }
  Line line = make_line(buf);
  line.poisoned = pairs.poisoned(i);
  return line;
}

Line column_line(const Pairs& pairs, int64_t j, LineBuffer& buf) {
  buf.resize(pairs.n());
  for (int64_t i = 0; i < pairs.n(); ++i) {
    buf.s[i] = pairs.scale() * pairs.sim(i, j);
    buf.in_z[i] = pairs.in_normalizer(i, j);
    buf.is_pos[i] = pairs.is_positive(i, j);
  }
  return make_line(buf);
}

bool symmetric(const Problem& pr) {
  return pr.p.direction == FNCE_DIRECTION_SYMMETRIC;
}

} // namespace

InputsF64 load_inputs(const Problem& pr) {
  const fnceLossParams& p = pr.p;
  InputsF64 in;
  in.scale = static_cast<double>(*p.logit_scale);
  in.a.resize(static_cast<size_t>(p.n * p.d));
  for (int64_t i = 0; i < p.n; ++i)
    for (int64_t k = 0; k < p.d; ++k)
      in.a[i * p.d + k] = load_element(p.a, i * p.lda + k, p.dtype);
  if (!pr.self_mode) {
    in.b.resize(static_cast<size_t>(p.m * p.d));
    for (int64_t j = 0; j < p.m; ++j)
      for (int64_t k = 0; k < p.d; ++k)
        in.b[j * p.d + k] = load_element(p.b, j * p.ldb + k, p.dtype);
  }
  return in;
}

ForwardF64 forward_f64(const Problem& pr, const InputsF64& in) {
  const fnceLossParams& p = pr.p;
  ForwardF64 out;
  out.loss.assign(static_cast<size_t>(pr.loss_count), 0.0);
  out.row_lse.assign(static_cast<size_t>(p.n), -kInf);
  if (symmetric(pr))
    out.col_lse.assign(static_cast<size_t>(p.m), -kInf);
  if (!std::isfinite(in.scale)) { // rule: a non-finite scale makes every output NaN
    std::fill(out.loss.begin(), out.loss.end(), kNaN);
    std::fill(out.row_lse.begin(), out.row_lse.end(), kNaN);
    std::fill(out.col_lse.begin(), out.col_lse.end(), kNaN);
    return out;
  }

  const Pairs pairs(pr, in);
  LineBuffer buf;
  double row_sum = 0.0, col_sum = 0.0;
  int64_t rows_valid = 0, cols_valid = 0;
  for (int64_t i = 0; i < p.n; ++i) {
    const Line line = row_line(pairs, i, buf);
    out.row_lse[i] = line.lse;
    const double l = line.loss(p.normalizer);
    if (line.valid()) {
      row_sum += l;
      ++rows_valid;
    }
    if (p.reduction == FNCE_REDUCTION_NONE)
      out.loss[i] = l;
  }
  if (symmetric(pr)) {
    for (int64_t j = 0; j < p.m; ++j) {
      const Line line = column_line(pairs, j, buf);
      out.col_lse[j] = line.lse;
      const double l = line.loss(p.normalizer);
      if (line.valid()) {
        col_sum += l;
        ++cols_valid;
      }
      if (p.reduction == FNCE_REDUCTION_NONE)
        out.loss[p.n + j] = l;
    }
  }

  // A mean over no valid line is 0 (never 0/0).
  const double row_mean = rows_valid > 0 ? row_sum / static_cast<double>(rows_valid) : 0.0;
  const double col_mean = cols_valid > 0 ? col_sum / static_cast<double>(cols_valid) : 0.0;
  if (p.reduction == FNCE_REDUCTION_MEAN)
    out.loss[0] = symmetric(pr) ? 0.5 * (row_mean + col_mean) : row_mean;
  else if (p.reduction == FNCE_REDUCTION_SUM)
    out.loss[0] = symmetric(pr) ? 0.5 * (row_sum + col_sum) : row_sum;
  return out;
}

double round_significant(double x, int bits) {
  if (!std::isfinite(x) || x == 0.0)
    return x;
  int e = 0;
  const double m = std::frexp(x, &e); // x = m 2^e, |m| in [0.5, 1)
  return std::ldexp(std::nearbyint(std::ldexp(m, bits)), e - bits);
}

BackwardF64 backward_f64(const Problem& pr, const InputsF64& in, const double* grad_loss,
                         GradRounding rounding) {
  const fnceLossParams& p = pr.p;
  const int64_t n = p.n, m = p.m, d = p.d;
  BackwardF64 out;
  out.grad_a.assign(static_cast<size_t>(n * d), 0.0);
  // In self mode the column-side gradient is accumulated separately, then added to grad_a.
  std::vector<double> grad_b(static_cast<size_t>(m * d), 0.0);
  if (!std::isfinite(in.scale)) {
    std::fill(out.grad_a.begin(), out.grad_a.end(), kNaN);
    if (!pr.self_mode)
      out.grad_b.assign(static_cast<size_t>(m * d), kNaN);
    out.grad_logit_scale = kNaN;
    return out;
  }

  const Pairs pairs(pr, in);
  LineBuffer buf;
  std::vector<Line> rows(static_cast<size_t>(n)), cols;
  int64_t rows_valid = 0, cols_valid = 0;
  for (int64_t i = 0; i < n; ++i) {
    rows[i] = row_line(pairs, i, buf);
    rows_valid += rows[i].valid() ? 1 : 0;
  }
  if (symmetric(pr)) {
    cols.resize(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) {
      cols[j] = column_line(pairs, j, buf);
      cols_valid += cols[j].valid() ? 1 : 0;
    }
  }

  // dL/dℓ for each row (w) and column (v).
  const double half = symmetric(pr) ? 0.5 : 1.0;
  std::vector<double> w(static_cast<size_t>(n), 0.0), v(symmetric(pr) ? m : 0, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (p.reduction == FNCE_REDUCTION_NONE)
      w[i] = grad_loss[i];
    else if (p.reduction == FNCE_REDUCTION_SUM)
      w[i] = half * grad_loss[0];
    else
      w[i] = rows_valid > 0 ? half * grad_loss[0] / static_cast<double>(rows_valid) : 0.0;
  }
  for (int64_t j = 0; j < static_cast<int64_t>(v.size()); ++j) {
    if (p.reduction == FNCE_REDUCTION_NONE)
      v[j] = grad_loss[n + j];
    else if (p.reduction == FNCE_REDUCTION_SUM)
      v[j] = half * grad_loss[0];
    else
      v[j] = cols_valid > 0 ? half * grad_loss[0] / static_cast<double>(cols_valid) : 0.0;
  }

  double grad_scale = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const Line& row = rows[i];
    for (int64_t j = 0; j < m; ++j) {
      const double sim = pairs.sim(i, j);
      const double s_ij = pairs.scale() * sim;
      const bool in_z = pairs.in_normalizer(i, j);
      const bool is_pos = pairs.is_positive(i, j);
      double g = 0.0; // G_ij = dL/ds_ij
      if (row.poisoned)
        g = kNaN;
      else if (row.valid())
        g += w[i] * row.dloss_ds(s_ij, in_z, is_pos);
      if (symmetric(pr) && cols[j].valid())
        g += v[j] * cols[j].dloss_ds(s_ij, in_z, is_pos);
      if (g == 0.0)
        continue; // no contribution (NaN compares unequal and is propagated)
      grad_scale += g * sim;
      // ∂s_ij/∂a_i = scale·∂sim_ij/∂a_i.
      pairs.add_sim_gradient(i, j, sim, pairs.scale() * g, &out.grad_a[i * d], &grad_b[j * d],
                             static_cast<int>(rounding));
    }
  }
  out.grad_logit_scale = grad_scale;
  if (pr.self_mode) {
    for (size_t k = 0; k < out.grad_a.size(); ++k)
      out.grad_a[k] += grad_b[k];
  } else {
    out.grad_b = std::move(grad_b);
  }
  return out;
}

// ---- The backend entry points (host/backend.h): dtype in, float / dtype out. ------------------

fnceStatus_t forward(const Problem& pr, float* loss, float* row_lse, float* col_lse) {
  try {
    const ForwardF64 f = forward_f64(pr, load_inputs(pr));
    for (int64_t k = 0; k < pr.loss_count; ++k)
      loss[k] = static_cast<float>(f.loss[k]);
    if (row_lse)
      for (int64_t i = 0; i < pr.p.n; ++i)
        row_lse[i] = static_cast<float>(f.row_lse[i]);
    if (col_lse && symmetric(pr))
      for (int64_t j = 0; j < pr.p.m; ++j)
        col_lse[j] = static_cast<float>(f.col_lse[j]);
  } catch (const std::bad_alloc&) {
    return fail(FNCE_ERROR_INTERNAL, "CPU reference: out of host memory for n=%lld, m=%lld, d=%lld",
                static_cast<long long>(pr.p.n), static_cast<long long>(pr.p.m),
                static_cast<long long>(pr.p.d));
  }
  return FNCE_SUCCESS;
}

fnceStatus_t backward(const Problem& pr, const float* grad_loss, void* grad_a, void* grad_b,
                      float* grad_logit_scale) {
  try {
    std::vector<double> g(static_cast<size_t>(pr.loss_count));
    for (int64_t k = 0; k < pr.loss_count; ++k)
      g[k] = grad_loss[k];
    const BackwardF64 b = backward_f64(pr, load_inputs(pr), g.data());
    // Rounded double -> float -> dtype (each step to nearest even).
    const fnceDataType_t t = pr.p.dtype;
    if (grad_a)
      for (int64_t k = 0; k < pr.p.n * pr.p.d; ++k)
        store_element(grad_a, k, t, static_cast<float>(b.grad_a[k]));
    if (grad_b && !pr.self_mode)
      for (int64_t k = 0; k < pr.p.m * pr.p.d; ++k)
        store_element(grad_b, k, t, static_cast<float>(b.grad_b[k]));
    if (grad_logit_scale)
      *grad_logit_scale = static_cast<float>(b.grad_logit_scale);
  } catch (const std::bad_alloc&) {
    return fail(FNCE_ERROR_INTERNAL, "CPU reference: out of host memory for n=%lld, m=%lld, d=%lld",
                static_cast<long long>(pr.p.n), static_cast<long long>(pr.p.m),
                static_cast<long long>(pr.p.d));
  }
  return FNCE_SUCCESS;
}

} // namespace reference
} // namespace flashnce
