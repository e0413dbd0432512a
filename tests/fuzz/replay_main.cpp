// A main() for api_fuzz.cpp without libFuzzer: runs LLVMFuzzerTestOneInput once on every file
// named on the command line (directories: every file in them), so that builds without clang
// (GCC, the sanitize preset, the emulated CUDA backend) replay the corpora in CTest.  A contract
// violation aborts, which fails the test.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  size_t count = 0;
  for (int k = 1; k < argc; ++k) {
    std::vector<fs::path> files;
    if (fs::is_directory(argv[k])) {
      for (const auto& e : fs::directory_iterator(argv[k]))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.')
          files.push_back(e.path());
    } else {
      files.emplace_back(argv[k]);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", f.c_str());
        return 1;
      }
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++count;
    }
  }
  std::printf("replayed %zu inputs\n", count);
  return count > 0 ? 0 : 1;
}
