#!/usr/bin/env bash
# One command for a lent GPU machine (run from anywhere; it works in the repo root):
#   1. detects the GPU and its architecture (H100/H200: sm_90a), nvcc and CMake;
#   2. builds GoogleTest + Google Benchmark from .device/deps (scripts/prepare-device-deps.sh,
#      offline) unless they are installed already;
#   3. configures (Release, CUDA architecture of this GPU) and builds the GPU targets (-j16);
#   4. runs the GPU test suites (flashnce_kernel_tests_gpu, flashnce_naive_test);
#   5. the benchmarks (flashnce_bench default set) and, when `import torch` works, the PyTorch
#      baseline (bench/torch_baseline.py);
#   6. compute-sanitizer memcheck / racecheck / synccheck on a short subset of the GPU tests;
#      then, on an H100 / H200, the experimental Hopper gradient kernel: the kernel tests and the
#      bf16 benchmarks again with FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1 (its table in summary.txt);
#   7. prints the compact table (shape, fused / naive / torch / GEMM-floor ms, TFLOP/s, extra
#      memory) LAST.
# Everything lands in $OUT (default build/device-check/out), at most 8 files:
#   summary.txt  table.md  bench.csv  bench.json  torch.csv  tests.log  sanitizer.log  build.log
#
# Usage: scripts/device-check.sh [--dry-run] [--quick]
#   --dry-run  no GPU here: configure + build as on the GPU machine (sm_90a), run what runs without
#              a GPU (the GPU tests skip, the benchmark falls back to CPU rows); chosen by itself
#              when nvidia-smi finds no GPU.
#   --quick    benchmarks limited to n <= 16384 (a faster smoke of the whole chain).
# Environment: OUT, FLASHNCE_DEVICE_ARCH (e.g. 90a, 80), FLASHNCE_JOBS (default: all cores),
#   FLASHNCE_SANITIZER_FILTER (gtest filter for step 5), FLASHNCE_BENCH_ARGS (extra flashnce_bench
#   flags, e.g. "--fnce_full"), FLASHNCE_BUILD_DIR (default build/device), FLASHNCE_CHECK_BUDGET
#   (seconds for the whole check, default 470; later steps get what is left).
# Budget: build ~2-4 min on 16 cores, tests + sanitizers ~1-2 min, benchmarks ~2-3 min: under 8.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t_start=$(date +%s)
dry=0
quick=0
for arg in "$@"; do
  case "$arg" in
  --dry-run) dry=1 ;;
  --quick) quick=1 ;;
  *)
    echo "device-check: unknown argument $arg" >&2
    exit 2
    ;;
  esac
done

OUT=${OUT:-$root/build/device-check/out}
mkdir -p "$OUT"
build=${FLASHNCE_BUILD_DIR:-$root/build/device}
deps_src=$root/.device/deps/src
deps_install=$root/build/device-deps/install
jobs=${FLASHNCE_JOBS:-$(nproc 2>/dev/null || echo 16)}
summary=$OUT/summary.txt
: >"$summary"
: >"$OUT/build.log"
: >"$OUT/tests.log"
: >"$OUT/sanitizer.log"

say() { echo "device-check: $*" | tee -a "$summary"; }
elapsed() { echo $(($(date +%s) - t_start)); }
# Every step after the build gets at most what is left of FLASHNCE_CHECK_BUDGET seconds (default
# 470: the whole check stays under 8 minutes), keeping 15 s for the table.
# (A dry run on a small machine is not held to it: default 3600 there.)
budget=${FLASHNCE_CHECK_BUDGET:-470}
limit() { # wanted seconds -> seconds to give (0: no time left)
  local left=$((budget - $(date +%s) + t_start - 15))
  [ "$left" -lt "$1" ] && echo $((left > 0 ? left : 0)) || echo "$1"
}
step() { # name, status
  printf '%-34s %s  (t=%ss)\n' "$1" "$2" "$(elapsed)" | tee -a "$summary"
}

# ---- 1. machine -------------------------------------------------------------------------------
gpu_name=""
gpu_cap=""
gpu_driver=""
if [ $dry = 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
  line=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1)
  gpu_name=$(echo "$line" | cut -d, -f1 | sed 's/^ *//;s/ *$//')
  gpu_driver=$(echo "$line" | cut -d, -f2 | tr -d ' ')
  gpu_cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ')
  case "$gpu_cap" in [0-9]*.[0-9]*) ;; *) gpu_cap="" ;; esac # older drivers lack the field
  if [ -z "$gpu_cap" ]; then
    case "$gpu_name" in *H100* | *H200* | *H800* | *H20*) gpu_cap=9.0 ;; *A100* | *A800*) gpu_cap=8.0 ;; esac
  fi
fi
if [ -z "$gpu_name" ]; then
  [ $dry = 0 ] && say "no GPU found by nvidia-smi: dry run (build only; GPU tests skip)"
  dry=1
fi
[ $dry = 1 ] && budget=${FLASHNCE_CHECK_BUDGET:-3600}
if [ -n "${FLASHNCE_DEVICE_ARCH:-}" ]; then
  arch=$FLASHNCE_DEVICE_ARCH
elif [ -n "$gpu_cap" ]; then
  case "$gpu_cap" in
  9.0) arch=90a ;; # Hopper: wgmma / TMA need the arch-specific target
  *) arch=${gpu_cap/./} ;;
  esac
else
  arch=90a # what the lent machine (H200) needs; the dry run builds exactly that
fi
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$nvcc_bin" ] || nvcc_bin=""
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (+uncommitted changes)" || true)
say "commit $commit$dirty, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "GPU: ${gpu_name:-none} ${gpu_cap:+(compute $gpu_cap)} ${gpu_driver:+driver $gpu_driver}, architecture $arch, $(nproc) cores"
say "nvcc: ${nvcc_bin:-missing} $([ -n "$nvcc_bin" ] && "$nvcc_bin" --version | grep -o 'release [0-9.]*')"
say "cmake: $(cmake --version 2>/dev/null | head -n1 || echo missing)"
if [ -z "$nvcc_bin" ] || ! command -v cmake >/dev/null; then
  say "FAILED: nvcc and cmake are required"
  exit 1
fi
export PATH=$(dirname "$nvcc_bin"):$PATH
export CUDACXX=$nvcc_bin

# ---- 2. GoogleTest / Google Benchmark ---------------------------------------------------------
prefix_path=""
have_system() { # GTest and benchmark findable without help?
  [ -f /usr/lib/x86_64-linux-gnu/cmake/GTest/GTestConfig.cmake ] &&
    [ -f /usr/lib/x86_64-linux-gnu/cmake/benchmark/benchmarkConfig.cmake ]
}
build_dep() { # name, source dir, extra cmake args...
  local name=$1 src=$2
  shift 2
  cmake -S "$src" -B "$root/build/device-deps/$name" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$deps_install" -DCMAKE_POSITION_INDEPENDENT_CODE=ON "$@" \
    >>"$OUT/build.log" 2>&1 &&
    cmake --build "$root/build/device-deps/$name" -j "$jobs" >>"$OUT/build.log" 2>&1 &&
    cmake --install "$root/build/device-deps/$name" >>"$OUT/build.log" 2>&1
}
if [ -f "$deps_install/.done" ]; then
  prefix_path=$deps_install
  step "deps (GoogleTest, Benchmark)" "ok (built before, $deps_install)"
elif [ -f "$deps_src/googletest/CMakeLists.txt" ] && [ -f "$deps_src/benchmark/CMakeLists.txt" ]; then
  if build_dep googletest "$deps_src/googletest" -DBUILD_GMOCK=ON -DINSTALL_GTEST=ON &&
    build_dep benchmark "$deps_src/benchmark" -DBENCHMARK_ENABLE_TESTING=OFF \
      -DBENCHMARK_ENABLE_GTEST_TESTS=OFF -DBENCHMARK_ENABLE_WERROR=OFF -DBENCHMARK_ENABLE_INSTALL=ON \
      -DBENCHMARK_INSTALL_DOCS=OFF; then
    touch "$deps_install/.done"
    prefix_path=$deps_install
    step "deps (GoogleTest, Benchmark)" "ok (built from .device/deps)"
  else
    step "deps (GoogleTest, Benchmark)" "FAILED (see build.log)"
  fi
elif have_system; then
  step "deps (GoogleTest, Benchmark)" "ok (system packages)"
else
  step "deps (GoogleTest, Benchmark)" "MISSING: run scripts/prepare-device-deps.sh and carry .device/deps"
fi

# ---- 3. configure + build ---------------------------------------------------------------------
tests_flag=ON
if [ -z "$prefix_path" ] && ! have_system; then tests_flag=OFF; fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLASHNCE_ENABLE_CUDA=ON \
  -DFLASHNCE_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DFLASHNCE_BUILD_EMU=OFF -DFLASHNCE_BUILD_PYTHON=OFF \
  -DFLASHNCE_BUILD_TESTS=$tests_flag -DFLASHNCE_BUILD_BENCH=ON \
  ${prefix_path:+-DCMAKE_PREFIX_PATH="$prefix_path"} >>"$OUT/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  step "configure (sm_$arch)" "FAILED (see build.log)"
  tail -n 30 "$OUT/build.log"
  exit 1
fi
step "configure (sm_$arch)" "ok"
available_targets=$(cmake --build "$build" --target help 2>/dev/null)
targets=()
for t in flashnce flashnce_kernel_tests_gpu flashnce_naive_test flashnce_bench; do
  echo "$available_targets" | grep -qw "$t" && targets+=("$t")
done
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >>"$OUT/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  step "build (${targets[*]})" "FAILED (see build.log)"
  grep -E "error|Error" "$OUT/build.log" | head -n 20
  exit 1
fi
step "build (${targets[*]})" "ok"

find_exe() { find "$build" -type f -name "$1" -perm -u+x 2>/dev/null | head -n1; }
gpu_tests=()
for t in flashnce_kernel_tests_gpu flashnce_naive_test; do
  exe=$(find_exe "$t")
  [ -n "$exe" ] && gpu_tests+=("$exe")
done

# ---- 4. GPU test suites -----------------------------------------------------------------------
for exe in "${gpu_tests[@]}"; do
  name=$(basename "$exe")
  echo "===== $name" >>"$OUT/tests.log"
  t=$(limit 240)
  if [ "$t" -lt 10 ]; then
    step "test $name" "SKIPPED (time budget spent)"
    continue
  fi
  timeout "$t" "$exe" --gtest_brief=1 >>"$OUT/tests.log" 2>&1
  rc=$?
  passed=$(sed -n "/===== $name/,\$p" "$OUT/tests.log" | grep -Eo '\[  PASSED  \] [0-9]+' | grep -Eo '[0-9]+$' | head -n1)
  skipped=$(sed -n "/===== $name/,\$p" "$OUT/tests.log" | grep -Eo '\[  SKIPPED \] [0-9]+ test' | grep -Eo '[0-9]+' | head -n1)
  failed=$(sed -n "/===== $name/,\$p" "$OUT/tests.log" | grep -Eo '[0-9]+ FAILED TEST' | grep -Eo '[0-9]+' | head -n1)
  status=$([ $rc -eq 0 ] && echo ok || echo "FAILED (rc $rc)")
  step "test $name" "$status: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
done
[ ${#gpu_tests[@]} -eq 0 ] && step "GPU tests" "none built"

# ---- 5. benchmarks ----------------------------------------------------------------------------
bench=$(find_exe flashnce_bench)
csvs=()
if [ -z "$bench" ]; then
  step "flashnce_bench" "not built (Google Benchmark missing?)"
else
  bench_args=(--fnce_csv="$OUT/bench.csv" --benchmark_out="$OUT/bench.json"
    --benchmark_out_format=json --benchmark_color=false)
  [ $quick = 1 ] && bench_args+=(--fnce_max_n=16384)
  [ $dry = 1 ] && bench_args+=(--fnce_smoke)
  # shellcheck disable=SC2206
  extra=(${FLASHNCE_BENCH_ARGS:-})
  echo "===== flashnce_bench ${bench_args[*]} ${extra[*]}" >>"$OUT/tests.log"
  t=$(limit 300)
  if [ "$t" -lt 10 ]; then
    rc="skipped: time budget spent"
  else
    timeout "$t" "$bench" "${bench_args[@]}" "${extra[@]}" >>"$OUT/tests.log" 2>&1
    rc=$?
    [ $rc = 124 ] && rc="124: timed out after $t s, partial results kept"
  fi
  [ -s "$OUT/bench.csv" ] && csvs+=("$OUT/bench.csv")
  case "$rc" in
  0) step "flashnce_bench" "ok" ;;
  skipped*) step "flashnce_bench" "$rc" ;;
  *) step "flashnce_bench" "rc $rc (see tests.log)" ;;
  esac
fi
if [ $dry = 0 ] && python3 -c "import torch" >/dev/null 2>&1; then
  tb=$(limit 150)
  targs=(--csv "$OUT/torch.csv" --time-budget $((tb > 40 ? tb - 30 : 10)))
  [ $quick = 1 ] && targs+=(--max-n 16384)
  echo "===== torch_baseline.py ${targs[*]}" >>"$OUT/tests.log"
  if [ "$tb" -lt 20 ]; then
    rc="skipped: time budget spent"
  else
    timeout "$tb" python3 "$root/bench/torch_baseline.py" "${targs[@]}" >>"$OUT/tests.log" 2>&1
    rc=$?
  fi
  [ -s "$OUT/torch.csv" ] && csvs+=("$OUT/torch.csv")
  case "$rc" in
  0) step "torch baseline" "ok" ;;
  skipped*) step "torch baseline" "$rc" ;;
  *) step "torch baseline" "rc $rc (see tests.log)" ;;
  esac
else
  step "torch baseline" "skipped ($([ $dry = 1 ] && echo "no GPU" || echo "python3 cannot import torch"))"
fi

# ---- 6. compute-sanitizer on a short subset (with the time that is left) ---------------------------------------------------
cuda_root=$(dirname "$(dirname "$nvcc_bin")")
sanitizer=$(command -v compute-sanitizer || ls "$cuda_root/bin/compute-sanitizer" \
  "$cuda_root/compute-sanitizer/compute-sanitizer" /usr/local/cuda/compute-sanitizer/compute-sanitizer \
  2>/dev/null | head -n1 || true)
pick_filter() { # a few tests spread over the suite: every k-th of the listed ones, at most 4
  "$1" --gtest_list_tests 2>/dev/null | awk '
    /^[^ ]/ { suite = $1; next }
    /^  / { name = $1; all[n++] = suite name }
    END { if (n == 0) exit; k = int(n / 4); if (k < 1) k = 1;
          out = ""; for (i = 0; i < n && i / k < 4; i += k) out = out (out ? ":" : "") all[i];
          print out }'
}
if [ $dry = 1 ]; then
  step "compute-sanitizer" "skipped (no GPU)"
elif [ -z "$sanitizer" ]; then
  step "compute-sanitizer" "skipped (not found)"
else
  for exe in "${gpu_tests[@]}"; do
    name=$(basename "$exe")
    filter=${FLASHNCE_SANITIZER_FILTER:-$(pick_filter "$exe")}
    for tool in memcheck racecheck synccheck; do
      t=$(limit 90)
      if [ "$t" -lt 15 ]; then
        step "$tool $name" "SKIPPED (time budget spent)"
        continue
      fi
      echo "===== $tool $name --gtest_filter=$filter" >>"$OUT/sanitizer.log"
      timeout "$t" "$sanitizer" --tool "$tool" --error-exitcode 99 "$exe" --gtest_brief=1 \
        --gtest_filter="$filter" >>"$OUT/sanitizer.log" 2>&1
      rc=$?
      errs=$(tail -n 5 "$OUT/sanitizer.log" | grep -Eo 'ERROR SUMMARY: [0-9]+' | grep -Eo '[0-9]+' | tail -n1)
      case $rc in
      0) status="ok (${errs:-0} errors)" ;;
      124) status="TIMEOUT" ;;
      *) status="FAILED (rc $rc, ${errs:-?} errors)" ;;
      esac
      step "$tool $name" "$status"
    done
  done
fi

# ---- 6b. the experimental Hopper gradient kernel, A/B (H100 / H200 only, with what time is left) -
# FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1 makes the same build dispatch grad_wgmma_kernel for bf16
# (host/cuda/dispatch.cpp): the kernel tests again (results against the CPU reference), then the
# bf16 benchmarks, naive rows included (side by side in one run).  Its table goes into
# summary.txt (no extra file in $OUT); compare its fused_fwdbwd rows with table.md's.
if [ $dry = 0 ] && [ "$gpu_cap" = 9.0 ]; then
  kt=$(find_exe flashnce_kernel_tests_gpu)
  t=$(limit 120)
  if [ -z "$kt" ] || [ "$t" -lt 20 ]; then
    step "wgmma backward: tests" "SKIPPED ($([ -z "$kt" ] && echo "not built" || echo "time budget spent"))"
  else
    echo "===== FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1 $(basename "$kt")" >>"$OUT/tests.log"
    FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1 timeout "$t" "$kt" --gtest_brief=1 >>"$OUT/tests.log" 2>&1
    rc=$?
    failed=$(sed -n '/===== FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1/,$p' "$OUT/tests.log" | grep -Eo '[0-9]+ FAILED TEST' | grep -Eo '[0-9]+' | head -n1)
    step "wgmma backward: tests" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (rc $rc, ${failed:-?} failed)")"
  fi
  t=$(limit 150)
  ab_csv="$build/wgmma_backward_bench.csv" ab_md="$build/wgmma_backward_table.md"
  if [ -z "$bench" ] || [ "$t" -lt 30 ]; then
    step "wgmma backward: bench" "SKIPPED ($([ -z "$bench" ] && echo "not built" || echo "time budget spent"))"
  else
    rm -f "$ab_csv" "$ab_md"
    ab_args=(--fnce_csv="$ab_csv" --benchmark_filter=/bf16/ --benchmark_color=false)
    [ $quick = 1 ] && ab_args+=(--fnce_max_n=16384)
    echo "===== FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1 flashnce_bench ${ab_args[*]}" >>"$OUT/tests.log"
    FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1 timeout "$t" "$bench" "${ab_args[@]}" >>"$OUT/tests.log" 2>&1
    rc=$?
    if [ -s "$ab_csv" ] && "$bench" --fnce_merge="$ab_csv" --fnce_table="$ab_md" \
      --fnce_title="grad_wgmma_kernel (FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1), bf16" >/dev/null 2>&1; then
      { echo; cat "$ab_md"; echo; } >>"$summary"
    fi
    step "wgmma backward: bench" "$([ $rc -eq 0 ] && echo ok || echo "rc $rc (see tests.log)")"
  fi
fi

# ---- 7. the table, last -----------------------------------------------------------------------
step "total" "$(elapsed) s"
echo
if [ -n "$bench" ] && [ ${#csvs[@]} -gt 0 ]; then
  merged=$(IFS=,; echo "${csvs[*]}")
  "$bench" --fnce_merge="$merged" --fnce_table="$OUT/table.md" \
    --fnce_title="FlashNCE device check: ${gpu_name:-no GPU (dry run)}, commit $commit$dirty, $(date -u +%Y-%m-%d)" 2>&1
else
  echo "(no benchmark results)"
fi
