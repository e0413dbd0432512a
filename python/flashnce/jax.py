"""JAX front end: `contrastive_loss` as a jax.custom_vjp function (gradients for a, b and
logit_scale) that works under jax.jit, jax.grad and jax.vmap (sequentially).

It runs the host backend (FNCE_BACKEND_HOST, f32 BLAS blocks; or the f64 reference after
flashnce.set_cpu_backend("reference")) on host copies of the arrays through jax.pure_callback, so
it is correct on any JAX device but not fast on a GPU: the CUDA path (an XLA FFI custom call that hands
device buffers and the XLA stream to fnceForward/fnceBackward) is not written yet.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _core

__all__ = ["contrastive_loss"]


def _host_forward(cfg: _core.LossConfig, a, b, scale, extras):
    targets, labels_a, labels_b = extras
    arrays = [
        np.asarray(x) if x is not None else None for x in (a, b, scale, targets, labels_a, labels_b)
    ]
    a, b, scale, targets, labels_a, labels_b = arrays
    scale = np.ascontiguousarray(scale, dtype=np.float32).reshape(1)
    pr = _core._prepare(a, b, scale, cfg, targets, labels_a, labels_b)
    loss, row_lse, col_lse = _core._run_forward(pr)
    if col_lse is None:
        col_lse = np.zeros((0,), np.float32)
    return loss, row_lse, col_lse


def _host_backward(cfg: _core.LossConfig, a, b, scale, extras, row_lse, col_lse, g):
    targets, labels_a, labels_b = extras
    a, b, targets, labels_a, labels_b = (
        np.asarray(x) if x is not None else None for x in (a, b, targets, labels_a, labels_b)
    )
    scale_shape = np.shape(scale)
    scale = np.ascontiguousarray(scale, dtype=np.float32).reshape(1)
    pr = _core._prepare(a, b, scale, cfg, targets, labels_a, labels_b)
    ga, gb, gs = _core._run_backward(
        pr,
        np.asarray(row_lse),
        np.asarray(col_lse) if cfg.symmetric else None,
        np.ascontiguousarray(g, dtype=np.float32).reshape(-1),
        True,
        b is not None,
        True,
    )
    gs = gs.reshape(scale_shape)
    return (ga, gb, gs) if b is not None else (ga, gs)


def _shapes(cfg: _core.LossConfig, a, b):
    n = a.shape[0]
    m = n if b is None else b.shape[0]
    if cfg.reduction == _core._C.Reduction.NONE:
        loss_shape = (n + m,) if cfg.symmetric else (n,)
    else:
        loss_shape = ()
    f32 = jnp.float32
    return (
        jax.ShapeDtypeStruct(loss_shape, f32),
        jax.ShapeDtypeStruct((n,), f32),
        jax.ShapeDtypeStruct((m,) if cfg.symmetric else (0,), f32),
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _loss(cfg, a, b, scale, extras):
    return _loss_fwd(cfg, a, b, scale, extras)[0]


def _loss_fwd(cfg, a, b, scale, extras):
    loss, row_lse, col_lse = jax.pure_callback(
        functools.partial(_host_forward, cfg),
        _shapes(cfg, a, b),
        a,
        b,
        scale,
        extras,
        vmap_method="sequential",
    )
    return loss, (a, b, scale, extras, row_lse, col_lse)


def _loss_bwd(cfg, res, g):
    a, b, scale, extras, row_lse, col_lse = res
    grads = [jax.ShapeDtypeStruct(a.shape, a.dtype)]
    if b is not None:
        grads.append(jax.ShapeDtypeStruct(b.shape, b.dtype))
    grads.append(jax.ShapeDtypeStruct(jnp.shape(scale), jnp.float32))
    out = jax.pure_callback(
        functools.partial(_host_backward, cfg),
        tuple(grads),
        a,
        b,
        scale,
        extras,
        row_lse,
        col_lse,
        g,
        vmap_method="sequential",
    )
    if b is None:
        ga, gs = out
        gb = None
    else:
        ga, gb, gs = out
    return ga, gb, gs, jax.tree_util.tree_map(lambda _: None, extras)


_loss.defvjp(_loss_fwd, _loss_bwd)


def contrastive_loss(
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
):
    """flashnce.forward's loss for JAX arrays, differentiable in a, b and logit_scale.

    Same options as flashnce.forward; logit_scale is a float32 scalar (or a Python float)."""
    cfg, labels_a, labels_b = _core._resolve(
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
    )
    a = jnp.asarray(a)
    if b is not None:
        b = jnp.asarray(b)
        if b.dtype != a.dtype:
            raise TypeError(f"flashnce: b has dtype {b.dtype} but a has {a.dtype}; they must match")
    if a.dtype not in (jnp.float32, jnp.float16, jnp.bfloat16):
        raise TypeError(f"flashnce: a must be float32, float16 or bfloat16, got {a.dtype}")
    scale = jnp.asarray(logit_scale, dtype=jnp.float32)
    if scale.size != 1:
        raise ValueError(f"flashnce: logit_scale must hold one value, got shape {scale.shape}")
    extras = []
    for name, x in (("targets", targets), ("labels", labels_a), ("labels", labels_b)):
        if x is not None:
            x = jnp.asarray(x)
            if not jnp.issubdtype(x.dtype, jnp.integer):
                raise TypeError(f"flashnce: {name} must be integers, got {x.dtype}")
        extras.append(x)
    extras = tuple(extras)
    return _loss(cfg, a, b, scale, extras)
