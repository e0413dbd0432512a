"""Data-parallel losses on torch.distributed: each rank computes its own rows of the global batch
against every rank's columns (the all-gather mode).  Used by flashnce.torch when a loss is given
`distributed=True` or a `group=`; torch only.

The global problem.  Rank r holds a_r (n_r x d) and b_r (m_r x d) (or only a_r in self mode).  The
global batch is their concatenation in rank order, A = [a_0; a_1; ...], B = [b_0; b_1; ...], and
every index a caller gives is local to its rank's shard: the DIAGONAL positive of row i of rank r
is row i of b_r, `targets` index b_r, VIEW_PAIRS pair row i of a_r with row (i + n_r/2) mod n_r,
`exclude_self` removes a row's own column.  With equal shards (n_r = m_r) DIAGONAL is exactly the
global diagonal; in general it is the global TARGETS problem t = offset_b(r) + i.

How it is computed.  Rank r gathers every rank's columns (autograd: the backward sums each rank's
column gradients into their owner; reduce-scatter on NCCL, all-reduce + slice on gloo), rotated so
that its own shard comes first: columns [b_r; b_{r+1}; ...; b_{r-1}].  A loss is invariant under a
permutation of its columns, and with the own shard first every local index is also the rotated
column's index, so the rank's rows are one ordinary ROWS problem of the C API (n_r x M), with
`exclude_self` removing j = i.  SYMMETRIC adds the transposed problem: b_r's rows against the
rotated gathered a.  Memory per rank: the gathered columns, O(M d); never n x m.

The loss each rank returns (the DDP convention).  With S_r the sum of rank r's valid row losses
and C the global number of valid rows (an all-reduce of a count; no host sync):
    MEAN: loss_r = W * S_r / C        SUM: loss_r = W * S_r        (SYMMETRIC: half of rows + cols)
so that mean_r loss_r is the global loss, and backward on every rank leaves a_r.grad equal to W
times the global loss's gradient with respect to a_r.  DistributedDataParallel averages parameter
gradients over the W ranks, so every parameter (and a replicated logit_scale) ends with exactly
the gradient of the single-device global loss.  This is open_clip's `local_loss=True,
gather_with_grad=True` and lightly's `gather_distributed=True` convention with equal shards.
NONE returns the rank's own lines of the global problem, unscaled ([rows; columns] when
symmetric).
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch
import torch.distributed as dist
from torch import Tensor

from . import _core

_C = _core._C


def resolve_group(distributed: bool, group):
    """The process group to use, or None for a single-device loss."""
    if group is None and not distributed:
        return None
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "flashnce: distributed=True (or group=) needs torch.distributed initialised "
            "(torch.distributed.init_process_group)"
        )
    return dist.group.WORLD if group is None else group


class _GatherRotated(torch.autograd.Function):
    """[x_r; x_{r+1}; ...; x_{r-1}] from every rank's x (row counts may differ); the backward
    sends each piece's gradient back to its owner and sums it there."""

    @staticmethod
    def forward(ctx, x: Tensor, group, sizes: List[int]):
        world, rank = len(sizes), dist.get_rank(group)
        rows = max(sizes)
        padded = x.new_zeros((rows,) + tuple(x.shape[1:]))
        padded[: x.shape[0]] = x
        pieces = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(pieces, padded, group=group)
        order = [(rank + k) % world for k in range(world)]
        ctx.group, ctx.sizes, ctx.order, ctx.rows = group, sizes, order, rows
        return torch.cat([pieces[s][: sizes[s]] for s in order])

    @staticmethod
    def backward(ctx, grad: Tensor):
        group, sizes, order, rows = ctx.group, ctx.sizes, ctx.order, ctx.rows
        world, rank = len(sizes), dist.get_rank(group)
        full = grad.new_zeros((world, rows) + tuple(grad.shape[1:]))
        for s, piece in zip(order, grad.split([sizes[s] for s in order])):
            full[s, : sizes[s]] = piece
        if grad.is_cuda and "nccl" in str(dist.get_backend(group)):  # also "cpu:gloo,cuda:nccl"
            mine = grad.new_empty((rows,) + tuple(grad.shape[1:]))
            dist.reduce_scatter_tensor(mine, full.reshape((world * rows,) + mine.shape[1:]),
                                       group=group)
        else:  # gloo has no reduce-scatter: all-reduce every piece, keep our own
            dist.all_reduce(full, group=group)
            mine = full[rank]
        return mine[: sizes[rank]], None, None


def _gather_rotated(x: Tensor, group, sizes: List[int]) -> Tensor:
    return _GatherRotated.apply(x, group, sizes)  # no graph when x needs no gradient (labels)


def _all_sizes(group, *counts: int, device) -> List[List[int]]:
    """counts of every rank: result[k][r] is rank r's k-th count."""
    world = dist.get_world_size(group)
    mine = torch.tensor(counts, dtype=torch.int64, device=device)
    every = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(every, mine, group=group)
    table = torch.stack(every).cpu().tolist()  # one small host sync: the shard sizes
    return [[row[k] for row in table] for k in range(len(counts))]


def _valid_rows(cfg, n: int, m: int, targets, labels_a, labels_b, device) -> Tensor:
    """How many of the n rows are valid (DESIGN.md §1: >= 1 positive and a non-empty normaliser,
    or a poisoning target >= m), as a float32 scalar on `device`; the same rule as the C API."""
    idx = torch.arange(n, device=device)
    excl = bool(cfg.exclude_self)
    self_col = (idx < m) if excl else torch.zeros(n, dtype=torch.bool, device=device)
    poisoned = torch.zeros(n, dtype=torch.bool, device=device)
    if cfg.positives == _C.Positives.DIAGONAL:
        n_pos = ((idx < m) & ~self_col).to(torch.int64)
    elif cfg.positives == _C.Positives.TARGETS:
        n_pos = ((targets >= 0) & (targets < m) & ~(self_col & (targets == idx))).to(torch.int64)
        poisoned = targets >= m
    else:  # LABELS
        keys = torch.sort(labels_b).values
        n_pos = torch.searchsorted(keys, labels_a, right=True) - torch.searchsorted(keys, labels_a)
        if excl and m > 0:
            own = labels_b[idx.clamp(max=m - 1)] == labels_a
            n_pos = n_pos - (self_col & own).to(torch.int64)
    z = m - self_col.to(torch.int64)
    if cfg.normalizer == _C.Normalizer.NEGATIVES:
        z = z - n_pos
    valid = ((n_pos > 0) & (z > 0)) | poisoned
    return valid.sum().to(torch.float32)


def _rows_part(loss_fn, a, cols, scale, cfg, targets, labels_a, labels_cols, reduction, device):
    """(the rows' loss with `reduction` SUM or NONE, their valid count) for a against cols."""
    rows_cfg = dataclasses.replace(cfg, direction=_C.Direction.ROWS, reduction=reduction)
    value = loss_fn(a, cols, scale, targets, labels_a, labels_cols, list(rows_cfg.as_ints()))
    count = _valid_rows(rows_cfg, a.shape[0], cols.shape[0], targets, labels_a, labels_cols, device)
    return value, count


def loss(loss_fn, a: Tensor, b: Optional[Tensor], scale: Tensor, cfg, targets, labels_a, labels_b,
         group, extra_b: Optional[Tensor] = None) -> Tensor:
    """The rank's share of the global loss (see the module docstring).  `loss_fn` is
    LossFunction.apply; `extra_b` (MoCo's queue) holds columns every rank already has: appended
    after the gathered ones, never gathered."""
    world, device = dist.get_world_size(group), a.device
    self_mode = b is None
    if self_mode and cfg.positives == _C.Positives.DIAGONAL:
        raise ValueError("flashnce: positives 'diagonal' is invalid in self mode (b=None): use "
                         "'view_pairs' (views stacked [z1; z2]) or 'labels'")
    if not self_mode and cfg.positives == _C.Positives.VIEW_PAIRS:
        raise ValueError("flashnce: positives 'view_pairs' needs self mode (b=None)")
    if cfg.symmetric and cfg.positives == _C.Positives.TARGETS:
        raise ValueError("flashnce: distributed direction 'symmetric' supports positives "
                         "'diagonal' and 'labels'; with targets use direction 'rows'")
    if cfg.symmetric and extra_b is not None:
        raise ValueError("flashnce: extra columns (a queue) need direction 'rows'")
    n = a.shape[0]
    m = n if self_mode else b.shape[0]
    n_all, m_all = _all_sizes(group, n, m, device=device)
    if cfg.positives == _C.Positives.DIAGONAL and any(x > y for x, y in zip(n_all, m_all)):
        raise ValueError(f"flashnce: positives 'diagonal' needs n <= m on every rank, got rows "
                         f"{n_all} and columns {m_all} per rank")
    if cfg.positives == _C.Positives.VIEW_PAIRS and any(x % 2 for x in n_all):
        raise ValueError(f"flashnce: positives 'view_pairs' needs an even row count on every "
                         f"rank (two stacked views), got {n_all}")
    if cfg.positives == _C.Positives.LABELS and (labels_a is None or
                                                 (not self_mode and labels_b is None)):
        raise ValueError("flashnce: positives 'labels' needs labels")

    cols = _gather_rotated(b if not self_mode else a, group, m_all)
    if extra_b is not None:
        cols = torch.cat([cols, extra_b])
    labels_cols = None
    if cfg.positives == _C.Positives.LABELS:
        labels_cols = _gather_rotated(labels_a if self_mode else labels_b, group, m_all)
    if self_mode:
        # a against its gathered self: exclude_self removes column i, the row's own (rotated)
        # column; VIEW_PAIRS becomes the local TARGETS (i + n/2) mod n.
        cfg = dataclasses.replace(cfg, exclude_self=True)
        if cfg.positives == _C.Positives.VIEW_PAIRS:
            cfg = dataclasses.replace(cfg, positives=_C.Positives.TARGETS)
            targets = (torch.arange(n, device=device) + n // 2) % n
    elif cfg.positives == _C.Positives.TARGETS:
        # A target beyond the rank's own shard must not name another rank's column: it poisons
        # the row (NaN loss), as a target >= m does on one device.
        targets = torch.where(targets >= m, torch.full_like(targets, cols.shape[0]), targets)

    none = cfg.reduction == _C.Reduction.NONE
    part = _C.Reduction.NONE if none else _C.Reduction.SUM
    total, count = _rows_part(loss_fn, a, cols, scale, cfg, targets, labels_a, labels_cols, part,
                              device)
    parts = [(total, count)]
    if cfg.symmetric and not self_mode:
        # The columns' loss: b's rows against the rotated gathered a.  DIAGONAL column k of this
        # rank is positive for row k when k < n, as TARGETS (rows' n may be below m).
        rows_rot = _gather_rotated(a, group, n_all)
        t_cols, la_cols, lb_cols = None, None, None
        col_cfg = cfg
        if cfg.positives == _C.Positives.DIAGONAL:
            col_cfg = dataclasses.replace(cfg, positives=_C.Positives.TARGETS)
            k = torch.arange(m, device=device)
            t_cols = torch.where(k < n, k, torch.full_like(k, -1))
        else:
            la_cols, lb_cols = labels_b, _gather_rotated(labels_a, group, n_all)
        parts.append(_rows_part(loss_fn, b, rows_rot, scale, col_cfg, t_cols, la_cols, lb_cols,
                                part, device))
    if none:
        return torch.cat([v for v, _ in parts]) if len(parts) > 1 else parts[0][0]
    counts = torch.stack([c for _, c in parts])
    if cfg.reduction == _C.Reduction.MEAN:
        dist.all_reduce(counts, group=group)
    weight = 0.5 if len(parts) > 1 else 1.0
    out = None
    for i, (value, _) in enumerate(parts):
        term = value * world * weight
        if cfg.reduction == _C.Reduction.MEAN:
            term = term / counts[i].clamp(min=1.0)  # no valid row anywhere: S_r = 0, loss 0
        out = term if out is None else out + term
    return out
