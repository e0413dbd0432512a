// A small reader for NumPy .npy files (format 1.0/2.0/3.0): 2-D (or 1-D), C order, little-endian
// float32 or float64.  Anything else is rejected with a message saying what was found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashnce_demo {

struct NpyMatrix {
  int64_t rows = 0, cols = 0; // a 1-D array of length k reads as k x 1
  std::vector<float> data;    // row-major; float64 files are rounded to float32
};

// Returns true and fills `out`, or returns false with `error` naming the file and the problem.
bool read_npy(const std::string& path, NpyMatrix* out, std::string* error);

// The same, from the bytes of a file (`name` is used in messages only).
bool parse_npy(const std::string& bytes, const std::string& name, NpyMatrix* out,
               std::string* error);

} // namespace flashnce_demo
