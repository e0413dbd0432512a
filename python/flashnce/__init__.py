"""FlashNCE: fused contrastive losses (InfoNCE, CLIP, NT-Xent, SupCon, VAE-prior) that never
write the n x m similarity matrix.

    loss, row_lse, col_lse = flashnce.forward(a, b, logit_scale, loss="clip")
    grad_a, grad_b, grad_scale = flashnce.backward(a, b, logit_scale, row_lse, col_lse, loss="clip")

Any DLPack-capable array works: host arrays (NumPy, CPU tensors) run on the host backend (f32
BLAS blocks on OpenMP threads; flashnce.set_cpu_backend("reference") picks the f64 oracle), CUDA
arrays (torch, CuPy, JAX) on the CUDA backend.  Framework wrappers: flashnce.torch (nn.Modules + autograd + torch.library custom ops),
flashnce.jax (jax.custom_vjp).  They are imported on demand, never by this module.
"""

from ._core import (
    PRESETS,
    CudaError,
    FlashNCEError,
    InternalError,
    InvalidValueError,
    LossConfig,
    NotSupportedError,
    WorkspaceTooSmallError,
    backend_is_available,
    backward,
    device_name,
    forward,
    get_cpu_backend,
    make_config,
    set_cpu_backend,
)
from . import _C

__version__ = "%d.%d.%d" % _C.version()

__all__ = [
    "PRESETS",
    "CudaError",
    "FlashNCEError",
    "InternalError",
    "InvalidValueError",
    "LossConfig",
    "NotSupportedError",
    "WorkspaceTooSmallError",
    "backend_is_available",
    "backward",
    "device_name",
    "forward",
    "get_cpu_backend",
    "make_config",
    "set_cpu_backend",
]
