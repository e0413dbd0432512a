// .npy parsing: magic "\x93NUMPY", version, header length, then a Python-dict header such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (128, 64), }
// padded with spaces and a newline, then the raw data.
#include "npy_reader.h"

#include <cstring>
#include <fstream>
#include <sstream>

namespace flashnce_demo {
namespace {

bool fail(std::string* error, const std::string& name, const std::string& what) {
  *error = name + ": " + what;
  return false;
}

// The value text after 'key': in the header dict, or "" when the key is absent.
std::string dict_value(const std::string& header, const std::string& key) {
  const std::string quoted[2] = {"'" + key + "'", "\"" + key + "\""};
  for (const auto& q : quoted) {
    size_t at = header.find(q);
    if (at == std::string::npos)
      continue;
    at = header.find(':', at + q.size());
    if (at == std::string::npos)
      return "";
    ++at;
    while (at < header.size() && header[at] == ' ')
      ++at;
    if (at < header.size() && header[at] == '(') {
      const size_t close = header.find(')', at);
      return close == std::string::npos ? "" : header.substr(at, close - at + 1);
    }
    size_t end = at;
    while (end < header.size() && header[end] != ',' && header[end] != '}')
      ++end;
    std::string v = header.substr(at, end - at);
    while (!v.empty() && v.back() == ' ')
      v.pop_back();
    return v;
  }
  return "";
}

bool parse_shape(const std::string& text, std::vector<int64_t>* dims) {
  // "(a, b)", "(a,)" or "()".
  if (text.size() < 2 || text.front() != '(' || text.back() != ')')
    return false;
  std::string inner = text.substr(1, text.size() - 2);
  size_t pos = 0;
  while (pos < inner.size()) {
    while (pos < inner.size() && (inner[pos] == ' ' || inner[pos] == ','))
      ++pos;
    if (pos >= inner.size())
      break;
    size_t end = pos;
    while (end < inner.size() && inner[end] >= '0' && inner[end] <= '9')
      ++end;
    if (end == pos || end - pos > 15)
      return false; // not a number, or absurdly large
    dims->push_back(std::stoll(inner.substr(pos, end - pos)));
    pos = end;
    while (pos < inner.size() && inner[pos] == ' ')
      ++pos;
    if (pos < inner.size() && inner[pos] != ',')
      return false;
  }
  return true;
}

} // namespace

bool parse_npy(const std::string& bytes, const std::string& name, NpyMatrix* out,
               std::string* error) {
  static const char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    return fail(error, name, "not a .npy file (no \\x93NUMPY magic)");
  const unsigned major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      return fail(error, name, "truncated .npy header");
    for (int k = 3; k >= 0; --k)
      header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + k]);
    offset = 12;
  } else {
    return fail(error, name, "unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len)
    return fail(error, name, "truncated .npy header");
  const std::string header = bytes.substr(offset, header_len);
  offset += header_len;

  const std::string descr = dict_value(header, "descr");
  size_t esize = 0;
  if (descr == "'<f4'" || descr == "\"<f4\"")
    esize = 4;
  else if (descr == "'<f8'" || descr == "\"<f8\"")
    esize = 8;
  else
    return fail(error, name,
                "dtype must be little-endian float32 ('<f4') or float64 ('<f8'), got " +
                    (descr.empty() ? std::string("no 'descr'") : descr));
  const std::string fortran = dict_value(header, "fortran_order");
  if (fortran != "False")
    return fail(error, name,
                "array must be C order (fortran_order False), got fortran_order " +
                    (fortran.empty() ? std::string("missing") : fortran));
  std::vector<int64_t> dims;
  const std::string shape = dict_value(header, "shape");
  if (!parse_shape(shape, &dims))
    return fail(error, name, "cannot read the shape, got " + (shape.empty() ? "nothing" : shape));
  if (dims.size() != 1 && dims.size() != 2)
    return fail(error, name,
                "array must be 1-D or 2-D, got " + std::to_string(dims.size()) + " dimensions " +
                    shape);
  const int64_t rows = dims[0], cols = dims.size() == 2 ? dims[1] : 1;
  if (rows < 1 || cols < 1)
    return fail(error, name, "array must not be empty, got shape " + shape);
  if (rows > (int64_t{1} << 40) / cols)
    return fail(error, name, "array too large: " + shape);
  const size_t count = static_cast<size_t>(rows * cols);
  if (bytes.size() - offset != count * esize)
    return fail(error, name,
                "data size mismatch: shape " + shape + " needs " + std::to_string(count * esize) +
                    " bytes, the file has " + std::to_string(bytes.size() - offset));
  out->rows = rows;
  out->cols = cols;
  out->data.resize(count);
  const char* src = bytes.data() + offset;
  for (size_t k = 0; k < count; ++k) {
    if (esize == 4) {
      std::memcpy(&out->data[k], src + 4 * k, 4);
    } else {
      double v;
      std::memcpy(&v, src + 8 * k, 8);
      out->data[k] = static_cast<float>(v);
    }
  }
  return true;
}

bool read_npy(const std::string& path, NpyMatrix* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail(error, path, "cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return parse_npy(s.str(), path, out, error);
}

} // namespace flashnce_demo
