// flashnce._C — the nanobind extension under the Python package: a thin, framework-agnostic
// layer over the C API (include/flashnce/flashnce.h).
//
// What lives here, and nothing more:
//  - the enums and fnceLossParams, with pointers as integers (the Python side takes them from
//    whatever framework owns the memory: NumPy, torch, CuPy, JAX through DLPack);
//  - forward/backward/workspace-size calls that return (status, message) instead of raising, so
//    that the Python layer owns the exception types;
//  - array_info(): reads data pointer, shape, strides, dtype and device of any DLPack-capable or
//    buffer-protocol object (nanobind's ndarray caster does the DLPack exchange);
//  - empty(): a buffer in a backend's memory (fnceMalloc), handed back as a DLPack-capable array
//    that frees itself (fnceFree) — the package's allocator when the caller's framework has none
//    that we can use.
// The C calls run with the GIL released (the CPU reference can take a while); the caller keeps
// every array alive for the duration of the call.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "flashnce/flashnce.h"

namespace nb = nanobind;

namespace {

using Result = std::tuple<int, std::string>;

Result result(fnceStatus_t s) {
  // The message is per thread: read it on the thread that made the call, right after it.
  return {static_cast<int>(s), s == FNCE_SUCCESS ? std::string() : fnceGetLastErrorMessage()};
}

template <typename T> T* ptr(std::uintptr_t v) {
  return reinterpret_cast<T*>(v);
}
template <typename T> std::uintptr_t addr(T* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

std::string dtype_name(nb::dlpack::dtype t) {
  using nb::dlpack::dtype_code;
  const int bits = t.bits;
  if (t.lanes != 1)
    return "vector";
  switch (static_cast<dtype_code>(t.code)) {
  case dtype_code::Float:
    return "float" + std::to_string(bits);
  case dtype_code::Bfloat:
    return "bfloat" + std::to_string(bits);
  case dtype_code::Int:
    return "int" + std::to_string(bits);
  case dtype_code::UInt:
    return "uint" + std::to_string(bits);
  case dtype_code::Bool:
    return "bool";
  case dtype_code::Complex:
    return "complex" + std::to_string(bits);
  }
  return "unknown";
}

std::string device_name(int32_t device_type) {
  switch (device_type) {
  case nb::device::cpu::value:
    return "cpu";
  case nb::device::cuda::value:
    return "cuda";
  case nb::device::cuda_host::value:
    return "cuda_host";
  case nb::device::cuda_managed::value:
    return "cuda_managed";
  case nb::device::rocm::value:
    return "rocm";
  default:
    return "other";
  }
}

// Everything the Python layer needs to validate an array and pass it to the C API.
// Strides are in elements, as DLPack gives them.
nb::dict array_info(nb::ndarray<nb::ro> a) {
  nb::dict info;
  std::vector<int64_t> shape, strides;
  for (size_t i = 0; i < a.ndim(); ++i) {
    shape.push_back(static_cast<int64_t>(a.shape(i)));
    strides.push_back(static_cast<int64_t>(a.stride(i)));
  }
  info["ptr"] = addr(a.data());
  info["shape"] = nb::tuple(nb::cast(shape));
  info["strides"] = nb::tuple(nb::cast(strides));
  info["dtype"] = dtype_name(a.dtype());
  info["device"] = device_name(a.device_type());
  info["device_id"] = a.device_id();
  return info;
}

// A dense buffer in `backend`'s memory, exported through DLPack; freed when the last reference
// (including any framework array imported from it) goes away.
nb::object empty(fnceBackend_t backend, std::vector<size_t> shape, const std::string& dtype) {
  nb::dlpack::dtype t;
  size_t item = 0;
  if (dtype == "float32") {
    t = nb::dtype<float>();
    item = 4;
  } else if (dtype == "float16") {
    t = {static_cast<uint8_t>(nb::dlpack::dtype_code::Float), 16, 1};
    item = 2;
  } else if (dtype == "bfloat16") {
    t = {static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat), 16, 1};
    item = 2;
  } else if (dtype == "int64") {
    t = nb::dtype<int64_t>();
    item = 8;
  } else if (dtype == "uint8") {
    t = nb::dtype<uint8_t>();
    item = 1;
  } else {
    throw nb::value_error(("flashnce._C.empty: unsupported dtype '" + dtype + "'").c_str());
  }
  size_t bytes = item;
  for (size_t s : shape)
    bytes *= s;
  void* p = nullptr;
  if (bytes > 0) {
    const fnceStatus_t s = fnceMalloc(backend, &p, bytes);
    if (s != FNCE_SUCCESS) {
      const std::string msg = "flashnce: allocation of " + std::to_string(bytes) +
                              " bytes failed: " + fnceGetLastErrorMessage();
      PyErr_SetString(PyExc_MemoryError, msg.c_str());
      throw nb::python_error();
    }
  }
  struct Owner {
    fnceBackend_t backend;
    void* p;
  };
  nb::capsule owner(new Owner{backend, p}, [](void* o) noexcept {
    auto* own = static_cast<Owner*>(o);
    if (own->p)
      fnceFree(own->backend, own->p);
    delete own;
  });
  const int32_t dev =
      backend == FNCE_BACKEND_CUDA ? nb::device::cuda::value : nb::device::cpu::value;
  // array_api: a Python object with __dlpack__/__dlpack_device__ (and the buffer protocol on
  // the CPU), importable by NumPy, torch, CuPy and JAX.
  nb::ndarray<nb::array_api> arr(p, shape.size(), shape.data(), owner, nullptr, t, dev, 0);
  return nb::cast(arr);
}

std::string device_name_of(fnceBackend_t backend) {
  char name[256] = {0};
  if (fnceGetDeviceName(backend, name, sizeof(name)) != FNCE_SUCCESS)
    return std::string();
  return std::string(name);
}

} // namespace

NB_MODULE(_C, m) {
  m.doc() = "FlashNCE C API binding (internal; use flashnce.forward / flashnce.backward)";

  nb::enum_<fnceStatus_t>(m, "Status")
      .value("SUCCESS", FNCE_SUCCESS)
      .value("ERROR_INVALID_VALUE", FNCE_ERROR_INVALID_VALUE)
      .value("ERROR_NOT_SUPPORTED", FNCE_ERROR_NOT_SUPPORTED)
      .value("ERROR_WORKSPACE_TOO_SMALL", FNCE_ERROR_WORKSPACE_TOO_SMALL)
      .value("ERROR_CUDA", FNCE_ERROR_CUDA)
      .value("ERROR_INTERNAL", FNCE_ERROR_INTERNAL);
  nb::enum_<fnceBackend_t>(m, "Backend")
      .value("CUDA", FNCE_BACKEND_CUDA)
      .value("CPU", FNCE_BACKEND_CPU)
      .value("HOST", FNCE_BACKEND_HOST);
  nb::enum_<fnceCopyKind_t>(m, "CopyKind")
      .value("HOST_TO_BACKEND", FNCE_COPY_HOST_TO_BACKEND)
      .value("BACKEND_TO_HOST", FNCE_COPY_BACKEND_TO_HOST)
      .value("BACKEND_TO_BACKEND", FNCE_COPY_BACKEND_TO_BACKEND);
  nb::enum_<fnceDataType_t>(m, "DataType")
      .value("F32", FNCE_F32)
      .value("F16", FNCE_F16)
      .value("BF16", FNCE_BF16);
  nb::enum_<fnceSimilarity_t>(m, "Similarity")
      .value("DOT", FNCE_SIM_DOT)
      .value("COSINE", FNCE_SIM_COSINE)
      .value("NEG_SQ_DIST", FNCE_SIM_NEG_SQ_DIST);
  nb::enum_<fncePositives_t>(m, "Positives")
      .value("DIAGONAL", FNCE_POSITIVES_DIAGONAL)
      .value("TARGETS", FNCE_POSITIVES_TARGETS)
      .value("LABELS", FNCE_POSITIVES_LABELS)
      .value("VIEW_PAIRS", FNCE_POSITIVES_VIEW_PAIRS);
  nb::enum_<fnceNormalizer_t>(m, "Normalizer")
      .value("ALL", FNCE_NORMALIZER_ALL)
      .value("NEGATIVES", FNCE_NORMALIZER_NEGATIVES);
  nb::enum_<fnceDirection_t>(m, "Direction")
      .value("ROWS", FNCE_DIRECTION_ROWS)
      .value("SYMMETRIC", FNCE_DIRECTION_SYMMETRIC);
  nb::enum_<fnceReduction_t>(m, "Reduction")
      .value("MEAN", FNCE_REDUCTION_MEAN)
      .value("SUM", FNCE_REDUCTION_SUM)
      .value("NONE", FNCE_REDUCTION_NONE);

  // Pointers are plain integers on the Python side (0 = NULL).
#define FNCE_PTR_FIELD(name, type)                                                                 \
  def_prop_rw(                                                                                     \
      #name, [](const fnceLossParams& p) { return addr(p.name); },                                 \
      [](fnceLossParams& p, std::uintptr_t v) { p.name = ptr<type>(v); })

  nb::class_<fnceLossParams>(m, "LossParams")
      .def("__init__",
           [](fnceLossParams* p) {
             new (p) fnceLossParams();
             fnceLossParamsInit(p);
           })
      .def_rw("backend", &fnceLossParams::backend)
      .def_rw("dtype", &fnceLossParams::dtype)
      .def_rw("n", &fnceLossParams::n)
      .def_rw("m", &fnceLossParams::m)
      .def_rw("d", &fnceLossParams::d)
      .FNCE_PTR_FIELD(a, const void)
      .def_rw("lda", &fnceLossParams::lda)
      .FNCE_PTR_FIELD(b, const void)
      .def_rw("ldb", &fnceLossParams::ldb)
      .FNCE_PTR_FIELD(logit_scale, const float)
      .def_rw("similarity", &fnceLossParams::similarity)
      .def_rw("positives", &fnceLossParams::positives)
      .FNCE_PTR_FIELD(targets, const int64_t)
      .FNCE_PTR_FIELD(labels_a, const int64_t)
      .FNCE_PTR_FIELD(labels_b, const int64_t)
      .def_rw("exclude_self", &fnceLossParams::exclude_self)
      .def_rw("normalizer", &fnceLossParams::normalizer)
      .def_rw("direction", &fnceLossParams::direction)
      .def_rw("reduction", &fnceLossParams::reduction)
      .def_rw("allow_tf32", &fnceLossParams::allow_tf32);
#undef FNCE_PTR_FIELD

  m.def("status_string", [](fnceStatus_t s) { return std::string(fnceGetStatusString(s)); });
  m.def("backend_is_available", [](fnceBackend_t b) { return fnceBackendIsAvailable(b) != 0; });
  m.def("device_name", &device_name_of);
  m.def("version",
        [] { return std::make_tuple(FNCE_VERSION_MAJOR, FNCE_VERSION_MINOR, FNCE_VERSION_PATCH); });

  m.def("forward_workspace_size", [](const fnceLossParams& p) {
    size_t bytes = 0;
    const fnceStatus_t s = fnceForwardWorkspaceSize(&p, &bytes);
    auto [code, msg] = result(s);
    return std::make_tuple(code, msg, static_cast<uint64_t>(bytes));
  });
  m.def("backward_workspace_size", [](const fnceLossParams& p) {
    size_t bytes = 0;
    const fnceStatus_t s = fnceBackwardWorkspaceSize(&p, &bytes);
    auto [code, msg] = result(s);
    return std::make_tuple(code, msg, static_cast<uint64_t>(bytes));
  });

  m.def(
      "forward",
      [](const fnceLossParams& p, std::uintptr_t loss, std::uintptr_t row_lse,
         std::uintptr_t col_lse, std::uintptr_t workspace, uint64_t workspace_bytes,
         std::uintptr_t stream) {
        fnceStatus_t s;
        {
          nb::gil_scoped_release release;
          s = fnceForward(&p, ptr<float>(loss), ptr<float>(row_lse), ptr<float>(col_lse),
                          ptr<void>(workspace), static_cast<size_t>(workspace_bytes),
                          ptr<void>(stream));
        }
        return result(s);
      },
      nb::arg("params"), nb::arg("loss"), nb::arg("row_lse"), nb::arg("col_lse"),
      nb::arg("workspace"), nb::arg("workspace_bytes"), nb::arg("stream"));

  m.def(
      "backward",
      [](const fnceLossParams& p, std::uintptr_t row_lse, std::uintptr_t col_lse,
         std::uintptr_t grad_loss, std::uintptr_t grad_a, std::uintptr_t grad_b,
         std::uintptr_t grad_logit_scale, std::uintptr_t workspace, uint64_t workspace_bytes,
         std::uintptr_t stream) {
        fnceStatus_t s;
        {
          nb::gil_scoped_release release;
          s = fnceBackward(&p, ptr<const float>(row_lse), ptr<const float>(col_lse),
                           ptr<const float>(grad_loss), ptr<void>(grad_a), ptr<void>(grad_b),
                           ptr<float>(grad_logit_scale), ptr<void>(workspace),
                           static_cast<size_t>(workspace_bytes), ptr<void>(stream));
        }
        return result(s);
      },
      nb::arg("params"), nb::arg("row_lse"), nb::arg("col_lse"), nb::arg("grad_loss"),
      nb::arg("grad_a"), nb::arg("grad_b"), nb::arg("grad_logit_scale"), nb::arg("workspace"),
      nb::arg("workspace_bytes"), nb::arg("stream"));

  m.def("synchronize", [](fnceBackend_t b, std::uintptr_t stream) {
    fnceStatus_t s;
    {
      nb::gil_scoped_release release;
      s = fnceSynchronize(b, ptr<void>(stream));
    }
    return result(s);
  });

  m.def("memcpy", [](fnceBackend_t b, std::uintptr_t dst, std::uintptr_t src, uint64_t bytes,
                     fnceCopyKind_t kind) {
    fnceStatus_t s;
    {
      nb::gil_scoped_release release;
      s = fnceMemcpy(b, ptr<void>(dst), ptr<const void>(src), static_cast<size_t>(bytes), kind);
    }
    return result(s);
  });

  m.def("array_info", &array_info, nb::arg("array"),
        "Data pointer, shape, strides (elements), dtype and device of a DLPack-capable or "
        "buffer-protocol array.");
  m.def("empty", &empty, nb::arg("backend"), nb::arg("shape"), nb::arg("dtype"),
        "An uninitialised dense array in the backend's memory (fnceMalloc), exported via DLPack.");
}
