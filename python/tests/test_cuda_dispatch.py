"""The CUDA dispatch of the functional core, checked without a GPU: arrays on a CUDA device select
the CUDA backend, with the framework's stream and device guard, and the library's refusal (no
device, or a build without nvcc) surfaces as a Python exception carrying its message."""

import numpy as np
import pytest

import flashnce
from flashnce import _C, _core

needs_no_cuda = pytest.mark.skipif(
    flashnce.backend_is_available("cuda"), reason="checks the behaviour without a CUDA device"
)


class FakeCudaAdapter(_core._NumpyAdapter):
    """NumPy memory that claims to live on cuda:0, recording what the core asks of it."""

    name = "fake-cuda"

    def __init__(self):
        self.calls = []

    def info(self, x):
        i = super().info(x)
        i.device = "cuda"
        return i

    def stream(self, like):
        self.calls.append("stream")
        return 0x1234

    def device_guard(self, like):
        self.calls.append("device_guard")
        return _core._NullGuard()

    def workspace(self, nbytes, like):
        self.calls.append(("workspace", nbytes))
        return None


@needs_no_cuda
def test_cuda_arrays_select_the_cuda_backend(monkeypatch):
    fake = FakeCudaAdapter()
    monkeypatch.setattr(_core, "_adapter_for", lambda x: fake)
    a = np.ones((4, 3), np.float32)
    cfg = flashnce.make_config("clip")
    pr = _core._prepare(a, a, np.ones(1, np.float32), cfg, None, None, None)
    assert pr.params.backend == _C.Backend.CUDA
    assert pr.params.dtype == _C.DataType.F32
    with pytest.raises((flashnce.NotSupportedError, flashnce.CudaError)) as e:
        flashnce.forward(a, a, np.ones(1, np.float32), loss="clip")
    assert str(e.value).startswith("flashnce.forward: ") and len(str(e.value)) > 30
    assert "device_guard" in fake.calls  # the call ran inside the framework's device guard


def test_cpu_arrays_select_the_host_backend_or_the_reference():
    a = np.ones((4, 3), np.float16)

    def prepared_backend():
        pr = _core._prepare(
            a, None, np.ones(1, np.float32), flashnce.make_config("nt_xent"), None, None, None
        )
        assert pr.params.dtype == _C.DataType.F16
        assert pr.params.b == 0 and pr.params.lda == 3  # self mode: b NULL for the C API
        return pr.params.backend

    assert flashnce.get_cpu_backend() == "host"  # the default (FLASHNCE_CPU_BACKEND unset)
    assert prepared_backend() == _C.Backend.HOST
    previous = flashnce.set_cpu_backend("reference")
    try:
        assert previous == "host" and prepared_backend() == _C.Backend.CPU
    finally:
        flashnce.set_cpu_backend(previous)
    assert prepared_backend() == _C.Backend.HOST
    with pytest.raises(ValueError, match="cpu backend must be 'host' or 'reference', got 'gpu'"):
        flashnce.set_cpu_backend("gpu")
    assert flashnce.get_cpu_backend() == "host"


@needs_no_cuda
def test_package_allocator_reports_the_library_message():
    with pytest.raises(MemoryError, match="allocation of 16 bytes failed: .+"):
        _C.empty(_C.Backend.CUDA, [4], "float32")


def test_package_allocator_on_the_cpu_backend_exports_dlpack():
    buf = _C.empty(_C.Backend.CPU, [3, 2], "float32")
    arr = np.from_dlpack(buf)
    assert arr.shape == (3, 2) and arr.dtype == np.float32
    arr[...] = 7.0
    info = _C.array_info(buf)
    assert info["shape"] == (3, 2) and info["strides"] == (2, 1) and info["device"] == "cpu"
    assert np.all(np.from_dlpack(buf) == 7.0)


def test_array_info_reads_strides_dtype_and_device():
    x = np.zeros((5, 8), np.float16)[::2, 1:]
    info = _C.array_info(x)
    assert info["shape"] == (3, 7) and info["strides"] == (16, 1)
    assert info["dtype"] == "float16" and info["device"] == "cpu"
    assert info["ptr"] == x.__array_interface__["data"][0]


def test_status_enum_matches_the_header():
    assert [int(s.value) for s in _C.Status] == [0, 1, 2, 3, 4, 5]
    assert _C.status_string(_C.Status.ERROR_INVALID_VALUE) == "FNCE_ERROR_INVALID_VALUE"
