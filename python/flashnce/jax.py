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
    axes = _vma(a) | _vma(b) | _vma(scale)
    loss, row_lse, col_lse = (_as_varying(x, axes) for x in (loss, row_lse, col_lse))
    return loss, (a, b, scale, extras, row_lse, col_lse)


def _vma(x):
    """The mesh axes x varies over inside shard_map (empty outside it, or on older JAX)."""
    if x is None or not hasattr(jax, "typeof"):
        return frozenset()
    aval = jax.typeof(x)
    if hasattr(aval, "manual_axis_type"):  # JAX 0.10
        return frozenset(aval.manual_axis_type.varying)
    return frozenset(getattr(aval, "vma", frozenset()))  # JAX 0.6 - 0.9


def _as_varying(x, axes):
    """x cast to vary over `axes` too (a pure_callback's results vary over none): custom_vjp
    checks that each cotangent has its primal's type, shard_map's varying axes included."""
    missing = tuple(sorted(frozenset(axes) - _vma(x)))
    if not missing:
        return x
    return jax.lax.pcast(x, missing, to="varying")


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
    ga, gs = _as_varying(ga, _vma(a)), _as_varying(gs, _vma(scale))
    gb = None if b is None else _as_varying(gb, _vma(b))
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
    axis_name=None,
):
    """flashnce.forward's loss for JAX arrays, differentiable in a, b and logit_scale.

    Same options as flashnce.forward; logit_scale is a float32 scalar (or a Python float).
    `axis_name` (inside jax.shard_map over that mesh axis): this device's share of the loss of the
    global batch, every device's shard concatenated in device order, with indices (diagonal,
    targets, view pairs) local to each shard, as flashnce.torch's distributed mode; the shares
    add up (jax.lax.psum) to the global loss, and jax.grad of the share gives the global batch's
    gradients (see _distributed_loss)."""
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
    if axis_name is not None:
        return _distributed_loss(cfg, a, b, scale, extras, axis_name)
    return _loss(cfg, a, b, scale, extras)


# ---- shard_map: the all-gather mode ----------------------------------------------------------
# As flashnce/_distributed.py (its docstring has the derivation): each device gathers every
# device's columns, rotated so that its own come first (jnp.roll by its axis_index), which makes
# every shard-local index an ordinary column index; its rows are one ROWS problem against them.
# all_gather's transpose (psum_scatter) sends each column's gradient home.  The convention is
# JAX's, not DDP's: share_r = S_r / C (C the global count of valid rows, a psum), so that
# psum(share) is the global loss, and gradients are not averaged afterwards: jax.grad of the share
# gives each device's rows the global gradient, and a replicated parameter (logit_scale, passed
# with P()) gets the psum of the devices' parts, the global gradient too.


def _valid_rows(cfg, n, m, targets, labels_a, labels_b):
    """The number of valid rows (DESIGN.md §1), the C API's rule, as a float32 scalar."""
    C = _core._C
    idx = jnp.arange(n)
    self_col = (idx < m) & bool(cfg.exclude_self)
    poisoned = jnp.zeros(n, bool)
    if cfg.positives == C.Positives.DIAGONAL:
        n_pos = ((idx < m) & ~self_col).astype(jnp.int32)
    elif cfg.positives == C.Positives.TARGETS:
        n_pos = ((targets >= 0) & (targets < m) & ~(self_col & (targets == idx))).astype(jnp.int32)
        poisoned = targets >= m
    else:  # LABELS
        keys = jnp.sort(labels_b)
        n_pos = (jnp.searchsorted(keys, labels_a, side="right")
                 - jnp.searchsorted(keys, labels_a, side="left")).astype(jnp.int32)
        if cfg.exclude_self and m > 0:
            own = labels_b[jnp.minimum(idx, m - 1)] == labels_a
            n_pos = n_pos - (self_col & own).astype(jnp.int32)
    z = m - self_col.astype(jnp.int32)
    if cfg.normalizer == C.Normalizer.NEGATIVES:
        z = z - n_pos
    return (((n_pos > 0) & (z > 0)) | poisoned).sum().astype(jnp.float32)


def _distributed_loss(cfg, a, b, scale, extras, axis_name):
    import dataclasses

    C = _core._C
    targets, labels_a, labels_b = extras
    self_mode = b is None
    if self_mode and cfg.positives == C.Positives.DIAGONAL:
        raise ValueError("flashnce: positives 'diagonal' is invalid in self mode (b=None)")
    if cfg.symmetric and cfg.positives == C.Positives.TARGETS:
        raise ValueError("flashnce: distributed direction 'symmetric' supports positives "
                         "'diagonal' and 'labels'; with targets use direction 'rows'")
    n = a.shape[0]
    m = n if self_mode else b.shape[0]
    if cfg.positives == C.Positives.DIAGONAL and n > m:
        raise ValueError(f"flashnce: positives 'diagonal' needs n <= m per shard, got {n} > {m}")
    if cfg.positives == C.Positives.VIEW_PAIRS and n % 2:
        raise ValueError(f"flashnce: positives 'view_pairs' needs an even shard, got {n} rows")
    rank = jax.lax.axis_index(axis_name)

    def gather(x):  # every device's x, this device's first
        every = jnp.roll(jax.lax.all_gather(x, axis_name), -rank, axis=0)
        return every.reshape((-1,) + x.shape[1:])

    axes = _vma(a) | _vma(b) | frozenset([axis_name] if isinstance(axis_name, str) else axis_name)
    scale = _as_varying(scale, axes)  # its cotangent is then psum'd: the global gradient
    cols = gather(a if self_mode else b)
    labels_cols = None
    if cfg.positives == C.Positives.LABELS:
        labels_cols = gather(labels_a if self_mode else labels_b)
    if self_mode:
        cfg = dataclasses.replace(cfg, exclude_self=True)
        if cfg.positives == C.Positives.VIEW_PAIRS:
            cfg = dataclasses.replace(cfg, positives=C.Positives.TARGETS)
            targets = (jnp.arange(n) + n // 2) % n
    elif cfg.positives == C.Positives.TARGETS:
        targets = jnp.where(targets >= m, cols.shape[0], targets)  # never another shard's column
    none = cfg.reduction == C.Reduction.NONE
    part = C.Reduction.NONE if none else C.Reduction.SUM

    def rows_part(cfg_p, x, y, t, la, lb):
        rows_cfg = dataclasses.replace(cfg_p, direction=C.Direction.ROWS, reduction=part)
        value = _loss(rows_cfg, x, y, scale, (t, la, lb))
        return value, _valid_rows(rows_cfg, x.shape[0], y.shape[0], t, la, lb)

    parts = [rows_part(cfg, a, cols, targets, labels_a, labels_cols)]
    if cfg.symmetric and not self_mode:
        col_cfg, t_cols, la_cols, lb_cols = cfg, None, None, None
        if cfg.positives == C.Positives.DIAGONAL:
            col_cfg = dataclasses.replace(cfg, positives=C.Positives.TARGETS)
            k = jnp.arange(m)
            t_cols = jnp.where(k < n, k, -1)
        else:
            la_cols, lb_cols = labels_b, gather(labels_a)
        parts.append(rows_part(col_cfg, b, gather(a), t_cols, la_cols, lb_cols))
    if none:
        return jnp.concatenate([v for v, _ in parts]) if len(parts) > 1 else parts[0][0]
    weight = 0.5 if len(parts) > 1 else 1.0
    out = 0.0
    for value, count in parts:
        if cfg.reduction == C.Reduction.MEAN:
            value = value / jnp.maximum(jax.lax.psum(count, axis_name), 1.0)
        out = out + weight * value
    return out
