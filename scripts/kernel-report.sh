#!/usr/bin/env bash
# The kernel report (bench/README.md "Kernel report"): static facts of the compiled kernels and the
# emulator's counters, on a machine without a GPU.  Writes build/<preset>/kernel-report.json and
# prints the Markdown tables.
#
#   scripts/kernel-report.sh [preset]          (default preset: default)
#
# 1. cuobjdump: PATH, the CUDA toolkit, else the PyPI wheels nvidia-cuda-cuobjdump /
#    nvidia-cuda-nvdisasm (installed here with pip when missing).
# 2. The kernels: the build's objects (build/<preset>/host/.../kernels/instantiations/*.cu.o) when
#    every one exists and none is older than a file under kernels/ or include/; else each
#    kernels/instantiations/*.cu is compiled with nvcc into build/<preset>/kernel-report/ with the
#    build's flags for the build's architectures (CMakeCache CMAKE_CUDA_ARCHITECTURES or
#    FLASHNCE_CUDA_ARCHITECTURES, default 80;90; "90a" gives sm_90a), the Hopper instantiations
#    (loss_wgmma_*.cu, objects of flashnce_sm90a) for sm_90a only.  Without nvcc the build's
#    objects are used even when older (said so); without either the static part is skipped.
# 3. The emulated counters: the preset is configured when build/<preset> has no build tree yet (a
#    clean checkout); when the build has the target flashnce_kernel_counters it is built and
#    run (its launch configurations give each kernel's threads and dynamic shared memory).  A build
#    without the target is not an error; a failing build or run of it is.
#    KERNEL_REPORT_SKIP_COUNTERS=1 skips this step; KERNEL_REPORT_COUNTERS_ARGS adds arguments.
# 4. bench/report/sass_report.py joins both: the JSON, the tables, and bench/report/h200_model.py's
#    bound when that module is there.
# Environment: KERNEL_REPORT_JOBS (parallel nvcc, default 2), NVCC (the compiler to use).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
preset=${1:-default}
build="build/${preset}"
report_py="bench/report/sass_report.py"
python=${PYTHON:-python3}
out_json="${build}/kernel-report.json"
mkdir -p "${build}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT

say() { echo "kernel-report: $*" >&2; }

# ---- 1. tools ----------------------------------------------------------------------------------
if ! "${python}" "${report_py}" --check-tools >/dev/null 2>&1; then
  say "cuobjdump not found; installing nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm with pip"
  export PIP_BREAK_SYSTEM_PACKAGES=1
  "${python}" -m pip install -q nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm >&2
fi
have_tools=1
if ! "${python}" "${report_py}" --check-tools >/dev/null 2>&1; then
  say "cuobjdump still not found"
  have_tools=0
fi

# ---- 2. the kernels' objects -------------------------------------------------------------------
# The Hopper instantiations (loss_wgmma_*) are sm_90a code only, built apart (flashnce_sm90a).
sources=() sm90a_sources=()
for src in kernels/instantiations/*.cu; do
  if [[ "$(basename "${src}")" == loss_wgmma_* ]]; then sm90a_sources+=("${src}"); else sources+=("${src}"); fi
done
build_objs="${build}/host/CMakeFiles/flashnce.dir/__/kernels/instantiations"
build_sm90a_objs="${build}/host/CMakeFiles/flashnce_sm90a.dir/__/kernels/instantiations"

# true when every source has an object in $1 (the sm_90a ones in $2) no older than any kernel file
objects_fresh() {
  local dir=$1 dir90a=$2 src obj
  for src in "${sources[@]}" "${sm90a_sources[@]}"; do
    obj="${dir}/$(basename "${src}").o"
    [[ "$(basename "${src}")" == loss_wgmma_* ]] && obj="${dir90a}/$(basename "${src}").o"
    [[ -f "${obj}" ]] || return 1
    if [[ -n "$(find kernels include -type f -newer "${obj}" -print -quit)" ]]; then
      return 1
    fi
  done
}

find_nvcc() {
  if [[ -n "${NVCC:-}" ]]; then command -v "${NVCC}" || true; return; fi
  local cached
  cached=$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "${build}/CMakeCache.txt" 2>/dev/null || true)
  if [[ -n "${cached}" && -x "${cached}" ]]; then echo "${cached}"; return; fi
  command -v nvcc || { [[ -x /usr/local/cuda/bin/nvcc ]] && echo /usr/local/cuda/bin/nvcc; } || true
}

gencode_flags() {
  local archs a flags=()
  local cache="${build}/CMakeCache.txt"
  archs=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "${cache}" 2>/dev/null || true)
  [[ -n "${archs}" ]] ||
    archs=$(sed -n 's/^FLASHNCE_CUDA_ARCHITECTURES:[A-Z]*=//p' "${cache}" 2>/dev/null || true)
  [[ -n "${archs}" ]] || archs="80;90"
  for a in ${archs//;/ }; do
    a=${a%-real}; a=${a%-virtual}
    [[ "${a}" =~ ^[0-9]+[a-z]?$ ]] || { say "architecture '${a}' ignored"; continue; }
    flags+=("-gencode" "arch=compute_${a},code=sm_${a}")
  done
  [[ ${#flags[@]} -gt 0 ]] ||
    flags=("-gencode" "arch=compute_80,code=sm_80" "-gencode" "arch=compute_90,code=sm_90")
  echo "${flags[@]}"
}

compile_one() { # compile_one NVCC OUTDIR SOURCE GENCODE...
  local nvcc=$1 outdir=$2 src=$3
  shift 3
  local obj
  obj="${outdir}/$(basename "${src}").o"
  if [[ -f "${obj}" && -z "$(find kernels include -type f -newer "${obj}" -print -quit)" ]]; then
    return 0
  fi
  echo "kernel-report: nvcc ${src}" >&2
  "${nvcc}" -O3 -DNDEBUG -std=c++17 --expt-relaxed-constexpr -I"${repo}" -I"${repo}/include" \
    -DFLASHNCE_BUILDING -DFLASHNCE_HAVE_CUDA_HEADERS=1 -DFLASHNCE_WITH_CUDA=1 "$@" \
    -c "${src}" -o "${obj}.tmp"
  mv "${obj}.tmp" "${obj}"
}
export -f compile_one
export repo

objdir="" objdir90a=""
if objects_fresh "${build_objs}" "${build_sm90a_objs}"; then
  objdir="${build_objs}"
  objdir90a="${build_sm90a_objs}"
  say "using the build's objects in ${objdir} and ${objdir90a}"
else
  nvcc=$(find_nvcc)
  if [[ -z "${nvcc}" ]] && compgen -G "${build_objs}/*.cu.o" >/dev/null; then
    objdir="${build_objs}"
    [[ -d "${build_sm90a_objs}" ]] && objdir90a="${build_sm90a_objs}"
    say "nvcc not found: using the build's objects in ${objdir}, OLDER than the kernel sources"
  elif [[ -z "${nvcc}" ]]; then
    say "nvcc not found and no objects in ${build_objs}: skipping the static part"
  else
    objdir="${build}/kernel-report"
    mkdir -p "${objdir}"
    read -r -a gencode <<<"$(gencode_flags)"
    say "kernel objects in ${objdir}: compiling what is older than the sources (${gencode[*]})"
    printf '%s\n' "${sources[@]}" |
      xargs -P "${KERNEL_REPORT_JOBS:-2}" -I{} bash -c 'compile_one "$@"' _ \
        "${nvcc}" "${objdir}" {} "${gencode[@]}"
    if [[ ${#sm90a_sources[@]} -gt 0 ]]; then
      objdir90a="${objdir}/sm90a"
      mkdir -p "${objdir90a}"
      printf '%s\n' "${sm90a_sources[@]}" |
        xargs -P "${KERNEL_REPORT_JOBS:-2}" -I{} bash -c 'compile_one "$@"' _ \
          "${nvcc}" "${objdir90a}" {} -gencode arch=compute_90a,code=sm_90a
    fi
  fi
fi

# ---- 3. the emulated counters ------------------------------------------------------------------
counter_args=()
counters_dir="${build}/bench/report/CMakeFiles/flashnce_kernel_counters.dir"
# A clean checkout has no build tree yet: configure the preset (the counters are built below).
if [[ "${KERNEL_REPORT_SKIP_COUNTERS:-0}" != 1 && ! -f "${build}/CMakeCache.txt" ]] &&
  grep -q "\"name\": \"${preset}\"" CMakePresets.json; then
  say "no build tree in ${build}: configuring the ${preset} preset"
  cmake --preset "${preset}" >"${tmp}/configure.log" 2>&1 ||
    { cat "${tmp}/configure.log" >&2; say "configuring ${preset} failed"; exit 1; }
fi
if [[ "${KERNEL_REPORT_SKIP_COUNTERS:-0}" == 1 ]]; then
  say "KERNEL_REPORT_SKIP_COUNTERS=1: no emulated counters"
elif [[ -d "${counters_dir}" ]]; then
  say "building and running flashnce_kernel_counters"
  log="${tmp}/counters-build.log"
  cmake --build "${build}" --target flashnce_kernel_counters -j2 >"${log}" 2>&1 ||
    { cat "${log}" >&2; say "building flashnce_kernel_counters failed"; exit 1; }
  # shellcheck disable=SC2086
  "${build}/bench/report/flashnce_kernel_counters" --launch-configs "${tmp}/launch-configs.json" \
    --json "${tmp}/emulated.json" ${KERNEL_REPORT_COUNTERS_ARGS:-} >&2
  counter_args=(--launch-configs "${tmp}/launch-configs.json" --emulated "${tmp}/emulated.json")
else
  say "no target flashnce_kernel_counters in ${build}: static part only"
fi

# ---- 4. the report -----------------------------------------------------------------------------
inputs=()
if [[ -n "${objdir}" && "${have_tools}" == 1 ]]; then
  inputs=("${objdir}"/*.cu.o)
  [[ -n "${objdir90a}" ]] && compgen -G "${objdir90a}/*.cu.o" >/dev/null && inputs+=("${objdir90a}"/*.cu.o)
elif [[ -n "${objdir}" ]]; then
  say "no cuobjdump: skipping the static part"
fi
"${python}" "${report_py}" "${counter_args[@]}" --json "${out_json}" "${inputs[@]}"
say "wrote ${out_json}"
