"""The functional core: flashnce.forward / flashnce.backward over any DLPack-capable array.

Arrays are read in place (data pointer + row stride); a copy is made only when the last axis is
not contiguous.  The backend follows the arrays' device: host memory -> the host backend
(FNCE_BACKEND_HOST: f32 blocks through BLAS, threaded; or the f64 CPU reference FNCE_BACKEND_CPU,
see set_cpu_backend), CUDA memory -> the CUDA backend, on the array framework's current stream.
Outputs are allocated by the caller's framework (NumPy, torch, CuPy); CUDA workspace through
torch's caching allocator for torch tensors, otherwise by the package (fnceMalloc).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from . import _C

__all__ = [
    "FlashNCEError",
    "InvalidValueError",
    "NotSupportedError",
    "WorkspaceTooSmallError",
    "CudaError",
    "InternalError",
    "LossConfig",
    "PRESETS",
    "make_config",
    "forward",
    "backward",
    "backend_is_available",
    "device_name",
    "set_cpu_backend",
    "get_cpu_backend",
]

# ---- which backend runs host arrays ----------------------------------------------------------

_CPU_BACKENDS = {"host": _C.Backend.HOST, "reference": _C.Backend.CPU}


def _initial_cpu_backend() -> str:
    import os

    name = os.environ.get("FLASHNCE_CPU_BACKEND", "host").strip().lower() or "host"
    if name not in _CPU_BACKENDS:
        raise ValueError(
            f"flashnce: FLASHNCE_CPU_BACKEND must be 'host' or 'reference', got {name!r}"
        )
    return name


_cpu_backend = _initial_cpu_backend()


def set_cpu_backend(name: str) -> str:
    """Chooses the backend for host (CPU) arrays, process-wide, and returns the previous choice:
    "host" (the default: FNCE_BACKEND_HOST, f32 BLAS blocks on OpenMP threads) or "reference"
    (FNCE_BACKEND_CPU, the f64 oracle; slow).  The environment variable FLASHNCE_CPU_BACKEND sets
    the initial choice."""
    global _cpu_backend
    if not isinstance(name, str) or name.strip().lower() not in _CPU_BACKENDS:
        raise ValueError(f"flashnce: cpu backend must be 'host' or 'reference', got {name!r}")
    previous, _cpu_backend = _cpu_backend, name.strip().lower()
    return previous


def get_cpu_backend() -> str:
    """The backend host arrays run on: "host" or "reference" (see set_cpu_backend)."""
    return _cpu_backend

# ---- errors --------------------------------------------------------------------------------


class FlashNCEError(RuntimeError):
    """A FlashNCE C API call failed; `status` is the fnceStatus_t name, the text is the library's
    own message (naming the argument and its value)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class InvalidValueError(FlashNCEError, ValueError):
    pass


class NotSupportedError(FlashNCEError, NotImplementedError):
    pass


class WorkspaceTooSmallError(FlashNCEError):
    pass


class CudaError(FlashNCEError):
    pass


class InternalError(FlashNCEError):
    pass


_ERRORS = {
    _C.Status.ERROR_INVALID_VALUE: InvalidValueError,
    _C.Status.ERROR_NOT_SUPPORTED: NotSupportedError,
    _C.Status.ERROR_WORKSPACE_TOO_SMALL: WorkspaceTooSmallError,
    _C.Status.ERROR_CUDA: CudaError,
    _C.Status.ERROR_INTERNAL: InternalError,
}


def _check(status: int, message: str, call: str) -> None:
    if status == 0:
        return
    st = _C.Status(status)
    cls = _ERRORS.get(st, FlashNCEError)
    text = message or _C.status_string(st)
    raise cls(st.name, f"{call}: {text}")


# ---- configuration -------------------------------------------------------------------------

_SIMILARITY = {
    "dot": _C.Similarity.DOT,
    "cosine": _C.Similarity.COSINE,
    "neg_sq_dist": _C.Similarity.NEG_SQ_DIST,
}
_POSITIVES = {
    "diagonal": _C.Positives.DIAGONAL,
    "targets": _C.Positives.TARGETS,
    "labels": _C.Positives.LABELS,
    "view_pairs": _C.Positives.VIEW_PAIRS,
}
_NORMALIZER = {"all": _C.Normalizer.ALL, "negatives": _C.Normalizer.NEGATIVES}
_DIRECTION = {"rows": _C.Direction.ROWS, "symmetric": _C.Direction.SYMMETRIC}
_REDUCTION = {"mean": _C.Reduction.MEAN, "sum": _C.Reduction.SUM, "none": _C.Reduction.NONE}

# The named losses: defaults for every option a caller leaves at None.
#   infonce    one positive per row (diagonal, a target index, or labels), rows only
#   clip       CLIP's symmetric loss: rows (image->text) and columns (text->image), cosine
#   nt_xent    SimCLR: self mode (b is None), all 2N views stacked, view i pairs with i + N
#   supcon     supervised contrastive (Khosla et al.): self mode, positives share a label
#   vae_prior  "InfoNCE is a VAE": normaliser over negatives only, Gaussian prior similarity
#   moco       queries against b = [positive keys; queue], key i positive for query i, cosine
# (the same choices as the C++ presets in include/flashnce/flashnce.hpp)
PRESETS = {
    "infonce": dict(similarity="dot", positives="diagonal", normalizer="all", direction="rows"),
    "clip": dict(
        similarity="cosine", positives="diagonal", normalizer="all", direction="symmetric"
    ),
    "nt_xent": dict(
        similarity="cosine", positives="view_pairs", normalizer="all", direction="rows"
    ),
    "supcon": dict(similarity="cosine", positives="labels", normalizer="all", direction="rows"),
    "vae_prior": dict(
        similarity="neg_sq_dist", positives="diagonal", normalizer="negatives", direction="rows"
    ),
    "moco": dict(similarity="cosine", positives="diagonal", normalizer="all", direction="rows"),
}


def _or(value, default):
    return default if value is None else value


def _pick(table: dict, value: Any, what: str):
    if isinstance(value, str):
        key = value.lower()
        if key in table:
            return table[key]
        raise ValueError(f"flashnce: {what} must be one of {sorted(table)}, got {value!r}")
    if value in table.values():
        return value
    raise ValueError(f"flashnce: {what} must be one of {sorted(table)}, got {value!r}")


@dataclass(frozen=True)
class LossConfig:
    """The options of one loss, resolved to the C API's enums."""

    similarity: Any
    positives: Any
    normalizer: Any
    direction: Any
    reduction: Any
    exclude_self: bool = False
    allow_tf32: bool = False

    @property
    def symmetric(self) -> bool:
        return self.direction == _C.Direction.SYMMETRIC

    def as_ints(self) -> Tuple[int, int, int, int, int, bool, bool]:
        return (
            self.similarity.value,
            self.positives.value,
            self.normalizer.value,
            self.direction.value,
            self.reduction.value,
            bool(self.exclude_self),
            bool(self.allow_tf32),
        )

    @staticmethod
    def from_ints(v) -> "LossConfig":
        return LossConfig(
            _C.Similarity(v[0]),
            _C.Positives(v[1]),
            _C.Normalizer(v[2]),
            _C.Direction(v[3]),
            _C.Reduction(v[4]),
            bool(v[5]),
            bool(v[6]),
        )


def make_config(
    loss: str = "infonce",
    *,
    similarity=None,
    positives=None,
    normalizer=None,
    direction=None,
    reduction="mean",
    exclude_self: bool = False,
    allow_tf32: bool = False,
    has_targets: bool = False,
    has_labels: bool = False,
) -> LossConfig:
    """Resolves a named loss plus overrides.  With positives left at None, `targets` selects
    TARGETS and `labels` selects LABELS, else the preset's choice."""
    if isinstance(loss, str) and loss.lower() in PRESETS:
        preset = PRESETS[loss.lower()]
    else:
        raise ValueError(f"flashnce: loss must be one of {sorted(PRESETS)}, got {loss!r}")
    if positives is None:
        if has_targets:
            positives = "targets"
        elif has_labels:
            positives = "labels"
        else:
            positives = preset["positives"]
    return LossConfig(
        similarity=_pick(_SIMILARITY, _or(similarity, preset["similarity"]), "similarity"),
        positives=_pick(_POSITIVES, positives, "positives"),
        normalizer=_pick(_NORMALIZER, _or(normalizer, preset["normalizer"]), "normalizer"),
        direction=_pick(_DIRECTION, _or(direction, preset["direction"]), "direction"),
        reduction=_pick(_REDUCTION, reduction, "reduction"),
        exclude_self=bool(exclude_self),
        allow_tf32=bool(allow_tf32),
    )


# ---- array adapters ------------------------------------------------------------------------

_FLOAT_DTYPES = {
    "float32": _C.DataType.F32,
    "float16": _C.DataType.F16,
    "bfloat16": _C.DataType.BF16,
}


@dataclass
class _Info:
    ptr: int
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]  # elements
    dtype: str
    device: str  # "cpu" / "cuda" / other
    device_id: int


def _is_torch(x) -> bool:
    t = sys.modules.get("torch")
    return t is not None and isinstance(x, t.Tensor)


def _is_numpy(x) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


class _NumpyAdapter:
    name = "numpy"

    def info(self, x) -> _Info:
        import numpy as np

        item = x.dtype.itemsize
        # A zero-size dtype (np.dtype([]), 'V0') has no element strides; the dtype checks reject it.
        strides = tuple(s // item if item and s % item == 0 else None for s in x.strides)
        dt = "bfloat16" if x.dtype.name == "bfloat16" else np.dtype(x.dtype).name
        if not x.dtype.isnative:  # never read big-endian bytes as native (native() converts)
            dt = "non-native-byte-order " + dt
        ptr = x.__array_interface__["data"][0]
        return _Info(ptr, tuple(x.shape), strides, dt, "cpu", 0)

    def contiguous(self, x):
        import numpy as np

        return np.ascontiguousarray(x)

    def empty(self, shape, dtype: str, like):
        import numpy as np

        if dtype == "bfloat16":
            return np.empty(shape, dtype=like.dtype)
        return np.empty(shape, dtype=dtype)

    def as_int64(self, x, what: str = "indices"):
        import numpy as np

        x = np.asarray(x)
        if x.dtype.kind not in "iub":
            raise TypeError(f"flashnce: {what} must be integers, got dtype {x.dtype}")
        if x.dtype.kind == "u" and x.size and int(x.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"flashnce: {what} must fit int64, got the value {int(x.max())}"
            )  # a cast would wrap it negative (an ignored row) instead of out of range
        return np.ascontiguousarray(x, dtype=np.int64)

    def native(self, x):
        """x itself, or a native-byte-order copy of a big-endian (non-native) array."""
        return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))

    def scalar(self, value, like):
        import numpy as np

        return np.array([value], dtype=np.float32)

    def workspace(self, nbytes, like):
        import numpy as np

        return np.empty(nbytes, dtype=np.uint8)  # host backend: per-line stats + thread blocks

    def stream(self, like) -> int:
        return 0

    def device_guard(self, like):
        return _NullGuard()

    def finish(self, x):
        return x


class _TorchAdapter:
    name = "torch"

    def info(self, x) -> _Info:
        dt = str(x.dtype).replace("torch.", "")
        dev = x.device.type
        return _Info(x.data_ptr(), tuple(x.shape), tuple(x.stride()), dt, dev, x.device.index or 0)

    def contiguous(self, x):
        return x.contiguous()

    def empty(self, shape, dtype: str, like):
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)

    def as_int64(self, x, what: str = "indices"):
        import torch

        return x.to(dtype=torch.int64).contiguous()

    def native(self, x):
        return x  # torch tensors are native byte order

    def scalar(self, value, like):
        import torch

        return torch.tensor([float(value)], dtype=torch.float32, device=like.device)

    def workspace(self, nbytes, like):
        import torch

        # Through torch's caching allocator, on the tensor's device.
        return torch.empty(nbytes, dtype=torch.uint8, device=like.device)

    def stream(self, like) -> int:
        import torch

        if like.device.type == "cuda":
            return int(torch.cuda.current_stream(like.device).cuda_stream)
        return 0

    def device_guard(self, like):
        import torch

        if like.device.type == "cuda":
            return torch.cuda.device(like.device)
        return _NullGuard()

    def finish(self, x):
        return x


class _DLPackAdapter:
    """Any other DLPack-capable array (CuPy, JAX, ...).  Outputs come from the package's
    allocator and are imported back through the input framework's from_dlpack when it has one."""

    name = "dlpack"

    def __init__(self, like):
        self.module = type(like).__module__.split(".")[0]

    def info(self, x) -> _Info:
        d = _C.array_info(x)
        return _Info(d["ptr"], d["shape"], d["strides"], d["dtype"], d["device"], d["device_id"])

    def contiguous(self, x):
        import numpy as np

        info = self.info(x)
        if info.device == "cpu":
            return np.ascontiguousarray(np.from_dlpack(x))
        mod = sys.modules.get(self.module)
        if mod is not None and hasattr(mod, "ascontiguousarray"):
            return mod.ascontiguousarray(x)
        raise ValueError(
            "flashnce: a CUDA array whose last axis is not contiguous needs a copy that this "
            f"package cannot make for '{self.module}' arrays; pass a contiguous array"
        )

    def finish(self, raw):
        """Hands a buffer filled by the C API to the caller as the input framework's array."""
        if raw is None or _is_numpy(raw) or type(raw).__module__.split(".")[0] == self.module:
            return raw
        if self.module == "cupy":
            import cupy

            return cupy.from_dlpack(raw)
        if self.module in ("jax", "jaxlib"):
            import jax.dlpack

            return jax.dlpack.from_dlpack(raw)
        return raw

    def empty(self, shape, dtype: str, like):
        info = self.info(like)
        backend = _C.Backend.CPU if info.device == "cpu" else _C.Backend.CUDA
        if backend == _C.Backend.CPU:
            import numpy as np

            if dtype == "bfloat16":
                raise TypeError("flashnce: bfloat16 host arrays need ml_dtypes; use float32")
            return np.empty(shape, dtype=dtype)
        if self.module == "cupy" and dtype != "bfloat16":
            import cupy  # CuPy's memory pool, on its current device

            return cupy.empty(shape, dtype=dtype)
        return _C.empty(backend, list(shape), dtype)

    def native(self, x):
        return x  # DLPack has no byte order: arrays are native

    def as_int64(self, x, what: str = "indices"):
        import numpy as np

        if self.info(x).device == "cpu":
            return np.ascontiguousarray(np.from_dlpack(x), dtype=np.int64)
        if self.module == "cupy":
            import cupy

            return cupy.ascontiguousarray(x, dtype=cupy.int64)
        if self.info(x).dtype == "int64":
            return x
        raise TypeError("flashnce: targets/labels on a CUDA device must be int64")

    def scalar(self, value, like):
        info = self.info(like)
        if info.device == "cpu":
            import numpy as np

            return np.array([value], dtype=np.float32)
        import numpy as np

        buf = _C.empty(_C.Backend.CUDA, [1], "float32")
        host = np.array([value], dtype=np.float32)
        st, msg = _C.memcpy(
            _C.Backend.CUDA,
            _C.array_info(buf)["ptr"],
            host.ctypes.data,
            4,
            _C.CopyKind.HOST_TO_BACKEND,
        )
        _check(st, msg, "fnceMemcpy")
        return self.finish(buf)

    def workspace(self, nbytes, like):
        info = self.info(like)
        if nbytes == 0:
            return None
        if info.device == "cpu":
            import numpy as np

            return np.empty(nbytes, dtype=np.uint8)
        if self.module == "cupy":
            import cupy

            return cupy.empty(nbytes, dtype=cupy.uint8)
        return _C.empty(_C.Backend.CUDA, [nbytes], "uint8")

    def stream(self, like) -> int:
        if self.module == "cupy":
            import cupy

            return int(cupy.cuda.get_current_stream().ptr)
        return 0  # legacy default stream

    def device_guard(self, like):
        if self.module == "cupy":
            import cupy

            return cupy.cuda.Device(self.info(like).device_id)
        return _NullGuard()


class _NullGuard:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _adapter_for(x):
    if _is_torch(x):
        return _TorchAdapter()
    if _is_numpy(x):
        return _NumpyAdapter()
    if hasattr(x, "__dlpack__"):
        return _DLPackAdapter(x)
    raise TypeError(
        f"flashnce: `a` must be a DLPack-capable array (NumPy, torch, CuPy, JAX), got {type(x)!r}"
    )


def _same_framework(ad, x, what: str):
    if ad.name == "torch" and not _is_torch(x):
        raise TypeError(f"flashnce: {what} must be a torch.Tensor like `a`, got {type(x)!r}")
    if ad.name == "numpy" and not _is_numpy(x):
        raise TypeError(f"flashnce: {what} must be a numpy.ndarray like `a`, got {type(x)!r}")


def _check_device(ref: _Info, info: _Info, what: str):
    if (info.device, info.device_id) != (ref.device, ref.device_id):
        raise ValueError(
            f"flashnce: {what} is on {info.device}:{info.device_id} but `a` is on "
            f"{ref.device}:{ref.device_id}; all arrays must be on one device"
        )


def _float_arg(value, what: str) -> float:
    """A Python number as float; ValueError (not OverflowError) when it is beyond float range."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"flashnce: {what} is beyond the float range, got {value!r:.60}") from None


def _matrix(ad, x, what: str):
    """Returns (array, info, leading stride) with a contiguous last axis, copying if needed."""
    x = ad.native(x)
    info = ad.info(x)
    if len(info.shape) != 2:
        raise ValueError(f"flashnce: {what} must be 2-D (rows x d), got shape {info.shape}")
    if info.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"flashnce: {what} must be float32, float16 or bfloat16, got {info.dtype}")
    rows, d = info.shape
    ld = info.strides[0]
    ok_last = d <= 1 or info.strides[1] == 1
    ok_lead = rows <= 1 or (ld is not None and ld >= d)
    if not (ok_last and ok_lead):
        x = ad.contiguous(x)
        info = ad.info(x)
        ld = d
    if rows <= 1 or ld is None:
        ld = d
    return x, info, max(int(ld), int(d), 1)


def _vector(ad, x, what: str, length: int, ref: _Info, as_int64: bool):
    x = ad.as_int64(x, what) if as_int64 else ad.native(x)
    info = ad.info(x)
    count = 1
    for s in info.shape:
        count *= s
    if count != length:
        raise ValueError(f"flashnce: {what} must have {length} entries, got shape {info.shape}")
    if len(info.shape) > 1 or (len(info.shape) == 1 and length > 1 and info.strides[0] != 1):
        x = ad.contiguous(x)
        info = ad.info(x)
    _check_device(ref, info, what)
    return x, info


@dataclass
class _Prepared:
    ad: Any
    params: Any
    cfg: LossConfig
    keep: tuple  # arrays that must stay alive during the call
    a: Any
    b: Any
    scale: Any
    n: int
    m: int
    d: int
    loss_count: int


def _prepare(a, b, logit_scale, cfg: LossConfig, targets, labels_a, labels_b) -> _Prepared:
    ad = _adapter_for(a)
    a, ia, lda = _matrix(ad, a, "a")
    if ia.device not in ("cpu", "cuda"):
        raise ValueError(f"flashnce: arrays must be in host or CUDA memory, got {ia.device}")
    n, d = ia.shape
    p = _C.LossParams()
    p.backend = _CPU_BACKENDS[_cpu_backend] if ia.device == "cpu" else _C.Backend.CUDA
    p.dtype = _FLOAT_DTYPES[ia.dtype]
    p.n, p.d, p.a, p.lda = n, d, ia.ptr, lda
    keep = [a]
    if b is None:
        m = n
        p.m, p.b, p.ldb = n, 0, 0
    else:
        _same_framework(ad, b, "b")
        b, ib, ldb = _matrix(ad, b, "b")
        _check_device(ia, ib, "b")
        if ib.dtype != ia.dtype:
            raise TypeError(
                f"flashnce: b has dtype {ib.dtype} but a has {ia.dtype}; they must match"
            )
        if ib.shape[1] != d:
            raise ValueError(
                f"flashnce: a is {n}x{d} but b is {ib.shape[0]}x{ib.shape[1]}; d must match"
            )
        m = ib.shape[0]
        p.m, p.b, p.ldb = m, ib.ptr, ldb
        keep.append(b)

    if (
        isinstance(logit_scale, (int, float))
        or type(logit_scale).__module__ == "numpy"
        and not _is_numpy(logit_scale)
    ):
        logit_scale = ad.scalar(_float_arg(logit_scale, "logit_scale"), a)
    else:
        _same_framework(ad, logit_scale, "logit_scale")
        logit_scale = ad.native(logit_scale)
    isc = ad.info(logit_scale)
    if isc.dtype != "float32":
        raise TypeError(f"flashnce: logit_scale must be float32, got {isc.dtype}")
    count = 1
    for s in isc.shape:
        count *= s
    if count != 1:
        raise ValueError(f"flashnce: logit_scale must hold one value, got shape {isc.shape}")
    _check_device(ia, isc, "logit_scale")
    p.logit_scale = isc.ptr
    keep.append(logit_scale)

    p.similarity, p.positives = cfg.similarity, cfg.positives
    p.normalizer, p.direction, p.reduction = cfg.normalizer, cfg.direction, cfg.reduction
    p.exclude_self = 1 if cfg.exclude_self else 0
    p.allow_tf32 = 1 if cfg.allow_tf32 else 0

    if targets is not None:
        _same_framework(ad, targets, "targets")
        targets, it = _vector(ad, targets, "targets", n, ia, True)
        p.targets = it.ptr
        keep.append(targets)
    if labels_a is not None:
        _same_framework(ad, labels_a, "labels")
        labels_a, il = _vector(ad, labels_a, "labels (of a)", n, ia, True)
        p.labels_a = il.ptr
        keep.append(labels_a)
    if labels_b is not None:
        _same_framework(ad, labels_b, "labels")
        labels_b, il = _vector(ad, labels_b, "labels (of b)", m, ia, True)
        p.labels_b = il.ptr
        keep.append(labels_b)

    if cfg.reduction == _C.Reduction.NONE:
        loss_count = n + m if cfg.symmetric else n
    else:
        loss_count = 1
    return _Prepared(ad, p, cfg, tuple(keep), a, b, logit_scale, n, m, d, loss_count)


def _resolve(loss, b, targets, labels, **options):
    """The front shared by forward/backward and the torch/JAX wrappers: the resolved LossConfig
    and the labels split into (labels_a, labels_b)."""
    labels_a, labels_b = _split_labels(labels, b is None)
    cfg = make_config(
        loss, has_targets=targets is not None, has_labels=labels is not None, **options
    )
    return cfg, labels_a, labels_b


def _split_labels(labels, self_mode: bool):
    if labels is None:
        return None, None
    if isinstance(labels, (tuple, list)):
        if len(labels) != 2:
            raise ValueError(
                "flashnce: labels must be one array (self mode) or a pair (labels_a, labels_b)"
            )
        return labels[0], labels[1]
    if not self_mode:
        raise ValueError(
            "flashnce: with b given, labels must be a pair (labels_a, labels_b); "
            "one array is for self mode (b=None)"
        )
    return labels, None


def _ptr(ad, x) -> int:
    return 0 if x is None else ad.info(x).ptr


def _run_forward(pr: _Prepared):
    ad, p, a = pr.ad, pr.params, pr.a
    loss_shape = (pr.loss_count,) if pr.cfg.reduction == _C.Reduction.NONE else ()
    loss = ad.empty(loss_shape, "float32", a)
    row_lse = ad.empty((pr.n,), "float32", a)
    col_lse = ad.empty((pr.m,), "float32", a) if pr.cfg.symmetric else None
    with ad.device_guard(a):
        st, msg, nbytes = _C.forward_workspace_size(p)
        _check(st, msg, "flashnce.forward")
        ws = ad.workspace(int(nbytes), a) if nbytes else None
        st, msg = _C.forward(
            p,
            _ptr(ad, loss),
            _ptr(ad, row_lse),
            _ptr(ad, col_lse),
            _ws_ptr(ws),
            int(nbytes),
            ad.stream(a),
        )
        _check(st, msg, "flashnce.forward")
    del ws
    return ad.finish(loss), ad.finish(row_lse), ad.finish(col_lse)


def _ws_ptr(ws) -> int:
    if ws is None:
        return 0
    if _is_torch(ws):
        return ws.data_ptr()
    return _C.array_info(ws)["ptr"]


def _run_backward(pr: _Prepared, row_lse, col_lse, grad_loss, need_a, need_b, need_scale):
    ad, p, a = pr.ad, pr.params, pr.a
    ref = ad.info(a)
    _same_framework(ad, row_lse, "row_lse")
    row_lse, ir = _vector(ad, row_lse, "row_lse", pr.n, ref, False)
    if ir.dtype != "float32":
        raise TypeError(f"flashnce: row_lse must be float32, got {ir.dtype}")
    if pr.cfg.symmetric:
        if col_lse is None:
            raise ValueError("flashnce: direction 'symmetric' needs col_lse from forward")
        _same_framework(ad, col_lse, "col_lse")
        col_lse, ic = _vector(ad, col_lse, "col_lse", pr.m, ref, False)
        if ic.dtype != "float32":
            raise TypeError(f"flashnce: col_lse must be float32, got {ic.dtype}")
    else:
        col_lse = None
    if grad_loss is None:
        if pr.loss_count != 1:
            raise ValueError(
                "flashnce: reduction 'none' needs grad_loss (one value per loss entry)"
            )
        grad_loss = ad.scalar(1.0, a)
    elif isinstance(grad_loss, (int, float)):
        grad_loss = ad.scalar(_float_arg(grad_loss, "grad_loss"), a)
    _same_framework(ad, grad_loss, "grad_loss")
    grad_loss, ig = _vector(ad, grad_loss, "grad_loss", pr.loss_count, ref, False)
    if ig.dtype != "float32":
        raise TypeError(f"flashnce: grad_loss must be float32, got {ig.dtype}")

    self_mode = pr.b is None
    grad_a = ad.empty((pr.n, pr.d), ref.dtype, a) if need_a or (self_mode and need_b) else None
    grad_b = ad.empty((pr.m, pr.d), ref.dtype, a) if need_b and not self_mode else None
    grad_s = ad.empty(tuple(ad.info(pr.scale).shape), "float32", a) if need_scale else None
    with ad.device_guard(a):
        st, msg, nbytes = _C.backward_workspace_size(p)
        _check(st, msg, "flashnce.backward")
        ws = ad.workspace(int(nbytes), a) if nbytes else None
        st, msg = _C.backward(
            p,
            _ptr(ad, row_lse),
            _ptr(ad, col_lse),
            _ptr(ad, grad_loss),
            _ptr(ad, grad_a),
            _ptr(ad, grad_b),
            _ptr(ad, grad_s),
            _ws_ptr(ws),
            int(nbytes),
            ad.stream(a),
        )
        _check(st, msg, "flashnce.backward")
    del ws
    return ad.finish(grad_a), ad.finish(grad_b), ad.finish(grad_s)


# ---- public functions ----------------------------------------------------------------------


def forward(
    a,
    b,
    logit_scale,
    *,
    loss: str = "infonce",
    similarity: Optional[str] = None,
    positives: Optional[str] = None,
    targets=None,
    labels=None,
    normalizer: Optional[str] = None,
    direction: Optional[str] = None,
    reduction: str = "mean",
    exclude_self: bool = False,
    allow_tf32: bool = False,
):
    """Computes a contrastive loss without the n x m similarity matrix.

    a: (n, d) array; b: (m, d) array, or None for self mode (SimCLR/SupCon: b is a).
    logit_scale: 1/temperature, a one-element float32 array on the arrays' device, or a float.
    loss: a named loss ("infonce", "clip", "nt_xent", "supcon", "vae_prior") giving the defaults
    of similarity / positives / normalizer / direction; any of them may be overridden.
    targets: (n,) integer column indices (positives "targets"; < 0 ignores the row).
    labels: one (n,) integer array in self mode, else a pair (labels_a, labels_b).
    Returns (loss, row_lse, col_lse) in the arrays' framework; loss is a 0-d float32 array
    (or n, or n + m for direction "symmetric", values with reduction "none"); col_lse is None
    unless direction is "symmetric".
    """
    cfg, labels_a, labels_b = _resolve(
        loss,
        b,
        targets,
        labels,
        similarity=similarity,
        positives=positives,
        normalizer=normalizer,
        direction=direction,
        reduction=reduction,
        exclude_self=exclude_self,
        allow_tf32=allow_tf32,
    )
    pr = _prepare(a, b, logit_scale, cfg, targets, labels_a, labels_b)
    return _run_forward(pr)


def backward(
    a,
    b,
    logit_scale,
    row_lse,
    col_lse=None,
    grad_loss=None,
    *,
    loss: str = "infonce",
    similarity: Optional[str] = None,
    positives: Optional[str] = None,
    targets=None,
    labels=None,
    normalizer: Optional[str] = None,
    direction: Optional[str] = None,
    reduction: str = "mean",
    exclude_self: bool = False,
    allow_tf32: bool = False,
    need_grad_a: bool = True,
    need_grad_b: bool = True,
    need_grad_logit_scale: bool = True,
):
    """Gradients of forward's loss: returns (grad_a, grad_b, grad_logit_scale).

    row_lse (and col_lse for direction "symmetric") are forward's outputs on the same inputs.
    grad_loss: dL/dloss, 1.0 by default (one value per entry for reduction "none").
    In self mode (b None) grad_b is None and the whole gradient is in grad_a.  A gradient not
    asked for (need_grad_* False) is None and is not computed.
    """
    cfg, labels_a, labels_b = _resolve(
        loss,
        b,
        targets,
        labels,
        similarity=similarity,
        positives=positives,
        normalizer=normalizer,
        direction=direction,
        reduction=reduction,
        exclude_self=exclude_self,
        allow_tf32=allow_tf32,
    )
    pr = _prepare(a, b, logit_scale, cfg, targets, labels_a, labels_b)
    return _run_backward(
        pr, row_lse, col_lse, grad_loss, need_grad_a, need_grad_b, need_grad_logit_scale
    )


_BACKEND_NAMES = {"cuda": _C.Backend.CUDA, "cpu": _C.Backend.CPU, "host": _C.Backend.HOST}


def backend_is_available(backend: str = "cuda") -> bool:
    """True when the backend can run now ("cuda": a device is present and the CUDA backend was
    built; "cpu" (the f64 reference) and "host" (the f32 CPU backend): always)."""
    return bool(_C.backend_is_available(_pick(_BACKEND_NAMES, backend, "backend")))


def device_name(backend: str = "cuda") -> str:
    return _C.device_name(_pick(_BACKEND_NAMES, backend, "backend"))
