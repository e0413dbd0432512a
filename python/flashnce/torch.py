"""PyTorch front end: torch.library custom ops (so torch.compile treats FlashNCE as an opaque op
with known output shapes), a torch.autograd.Function over them, a differentiable functional
`contrastive_loss`, and nn.Modules named after the losses users know.

CPU tensors run on the host backend (f32 BLAS blocks on OpenMP threads; the f64 reference after
flashnce.set_cpu_backend("reference")), CUDA tensors on the CUDA backend, on
torch.cuda.current_stream() of their device; CUDA workspace comes from torch's caching allocator.
Gradients flow to a, b and logit_scale (a learnable temperature needs no host sync: the scale is
read from device memory).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _core, _distributed

__all__ = [
    "contrastive_loss",
    "LossFunction",
    "InfoNCELoss",
    "ClipLoss",
    "NTXentLoss",
    "SupConLoss",
    "VAEPriorLoss",
    "MoCoLoss",
    "DCLLoss",
]


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,), dtype=torch.float32)


# ---- custom ops ----------------------------------------------------------------------------
# `config` is LossConfig.as_ints(): similarity, positives, normalizer, direction, reduction,
# exclude_self, allow_tf32.  Absent outputs are 0-element tensors (custom ops return tensors).


@torch.library.custom_op("flashnce::forward", mutates_args=())
def _forward_op(
    a: Tensor,
    b: Optional[Tensor],
    logit_scale: Tensor,
    targets: Optional[Tensor],
    labels_a: Optional[Tensor],
    labels_b: Optional[Tensor],
    config: List[int],
) -> Tuple[Tensor, Tensor, Tensor]:
    cfg = _core.LossConfig.from_ints(config)
    pr = _core._prepare(a, b, logit_scale, cfg, targets, labels_a, labels_b)
    loss, row_lse, col_lse = _core._run_forward(pr)
    return loss, row_lse, (col_lse if col_lse is not None else _empty(a))


def _loss_shape(cfg: _core.LossConfig, n: int, m: int):
    if cfg.reduction == _core._C.Reduction.NONE:
        return (n + m,) if cfg.symmetric else (n,)
    return ()


@_forward_op.register_fake
def _(a, b, logit_scale, targets, labels_a, labels_b, config):
    cfg = _core.LossConfig.from_ints(config)
    n = a.shape[0]
    m = n if b is None else b.shape[0]
    f32 = torch.float32
    return (
        a.new_empty(_loss_shape(cfg, n, m), dtype=f32),
        a.new_empty((n,), dtype=f32),
        a.new_empty((m,) if cfg.symmetric else (0,), dtype=f32),
    )


@torch.library.custom_op("flashnce::backward", mutates_args=())
def _backward_op(
    a: Tensor,
    b: Optional[Tensor],
    logit_scale: Tensor,
    targets: Optional[Tensor],
    labels_a: Optional[Tensor],
    labels_b: Optional[Tensor],
    row_lse: Tensor,
    col_lse: Tensor,
    grad_loss: Tensor,
    config: List[int],
    needs: List[bool],
) -> Tuple[Tensor, Tensor, Tensor]:
    cfg = _core.LossConfig.from_ints(config)
    pr = _core._prepare(a, b, logit_scale, cfg, targets, labels_a, labels_b)
    ga, gb, gs = _core._run_backward(
        pr, row_lse, col_lse if cfg.symmetric else None, grad_loss, needs[0], needs[1], needs[2]
    )
    return (
        ga if ga is not None else a.new_empty((0,)),
        gb if gb is not None else a.new_empty((0,)),
        gs if gs is not None else _empty(a),
    )


@_backward_op.register_fake
def _(a, b, logit_scale, targets, labels_a, labels_b, row_lse, col_lse, grad_loss, config, needs):
    self_mode = b is None
    ga = a.new_empty(a.shape) if needs[0] or (self_mode and needs[1]) else a.new_empty((0,))
    gb = b.new_empty(b.shape) if (needs[1] and not self_mode) else a.new_empty((0,))
    gs = logit_scale.new_empty(logit_scale.shape) if needs[2] else _empty(a)
    return ga, gb, gs


# ---- autograd ------------------------------------------------------------------------------


class LossFunction(torch.autograd.Function):
    """loss = FlashNCE(a, b, logit_scale); saves the row/column LSEs (O(n + m)) for backward."""

    @staticmethod
    def forward(ctx, a, b, logit_scale, targets, labels_a, labels_b, config):
        loss, row_lse, col_lse = torch.ops.flashnce.forward(
            a, b, logit_scale, targets, labels_a, labels_b, config
        )
        ctx.save_for_backward(a, b, logit_scale, targets, labels_a, labels_b, row_lse, col_lse)
        ctx.config = config
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        a, b, logit_scale, targets, labels_a, labels_b, row_lse, col_lse = ctx.saved_tensors
        need_a, need_b, need_s = ctx.needs_input_grad[:3]
        self_mode = b is None
        if not (need_a or need_b or need_s):
            return (None,) * 7
        ga, gb, gs = torch.ops.flashnce.backward(
            a,
            b,
            logit_scale,
            targets,
            labels_a,
            labels_b,
            row_lse,
            col_lse,
            grad_loss.to(torch.float32).contiguous(),
            ctx.config,
            [bool(need_a), bool(need_b and not self_mode), bool(need_s)],
        )
        return (
            ga if need_a else None,
            gb if (need_b and not self_mode) else None,
            gs if need_s else None,
            None,
            None,
            None,
            None,
        )


def _scale_tensor(logit_scale, like: Tensor) -> Tensor:
    if isinstance(logit_scale, Tensor):
        if logit_scale.dtype != torch.float32:
            raise TypeError(f"flashnce: logit_scale must be float32, got {logit_scale.dtype}")
        if logit_scale.device != like.device:
            raise ValueError(
                f"flashnce: logit_scale is on {logit_scale.device} but a is on {like.device}"
            )
        return logit_scale
    return torch.tensor(float(logit_scale), dtype=torch.float32, device=like.device)


def contrastive_loss(
    a: Tensor,
    b: Optional[Tensor],
    logit_scale,
    *,
    loss: str = "infonce",
    similarity: Optional[str] = None,
    positives: Optional[str] = None,
    targets: Optional[Tensor] = None,
    labels=None,
    normalizer: Optional[str] = None,
    direction: Optional[str] = None,
    reduction: str = "mean",
    exclude_self: bool = False,
    allow_tf32: bool = False,
    queue: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    logit_bias=None,
    distributed: bool = False,
    group=None,
) -> Tensor:
    """Differentiable flashnce.forward for torch tensors (same options); returns the loss.

    `distributed=True` (the default process group) or `group=` (a torch.distributed process
    group) computes this rank's share of the loss of the global batch, every rank's a and b
    concatenated in rank order, with indices (diagonal, targets, view pairs) local to each rank's
    shard: mean over ranks of the returned value = the global loss, and after DDP's gradient
    averaging every parameter has the single-device global gradient (see flashnce._distributed).
    `queue` (MoCo): extra columns appended after b, negatives for every row; distributed, each
    rank's own copy is used as it is (never gathered).
    `ignore_index` (torch's cross_entropy argument): rows whose target equals it are ignored, as
    negative targets always are; it may be non-negative (e.g. 0 for a padding class).
    `logit_bias` (open_clip's ClipLoss argument: logits = scale * sim + bias): accepted for
    drop-in use and exact as it is.  Every loss here is LSE over the normaliser minus the mean
    over the positives (DESIGN.md §1), so one bias added to every logit cancels: the loss is
    unchanged and the bias's gradient is 0 (a NaN / Inf bias still gives a NaN loss, as the
    logits would).  (SigLIP's sigmoid loss, where the bias matters, is not a loss form yet.)"""
    if logit_bias is not None:
        if not isinstance(logit_bias, (Tensor, int, float)) or isinstance(logit_bias, bool):
            raise TypeError(
                f"flashnce: logit_bias must be a torch.Tensor, a number or None, got "
                f"{type(logit_bias)!r}"
            )
        if isinstance(logit_bias, Tensor) and logit_bias.numel() != 1:
            raise ValueError(
                f"flashnce: logit_bias must hold one value (one bias for every logit), got shape "
                f"{tuple(logit_bias.shape)}"
            )
        out = contrastive_loss(
            a, b, logit_scale, loss=loss, similarity=similarity, positives=positives,
            targets=targets, labels=labels, normalizer=normalizer, direction=direction,
            reduction=reduction, exclude_self=exclude_self, allow_tf32=allow_tf32, queue=queue,
            ignore_index=ignore_index, distributed=distributed, group=group,
        )
        if not isinstance(logit_bias, Tensor):
            return out + 0.0 * float(logit_bias)
        # (bias - bias): exactly 0 for a finite bias, NaN otherwise, and a zero gradient.
        return out + (logit_bias - logit_bias).reshape(()).to(out.dtype)
    if not isinstance(a, Tensor):
        raise TypeError(f"flashnce.torch: a must be a torch.Tensor, got {type(a)!r}")
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
        allow_tf32=allow_tf32,
    )
    for name, t in (("b", b), ("targets", targets), ("labels", labels_a), ("labels", labels_b)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"flashnce.torch: {name} must be a torch.Tensor, got {type(t)!r}")
        if t is not None and t.device != a.device:
            raise ValueError(f"flashnce: {name} is on {t.device} but a is on {a.device}")
    if b is not None and b.dtype != a.dtype:
        raise TypeError(f"flashnce: b has dtype {b.dtype} but a has {a.dtype}; they must match")
    if queue is not None:
        if b is None:
            raise ValueError("flashnce: queue needs b (the positive keys); self mode has none")
        if not isinstance(queue, Tensor):
            raise TypeError(f"flashnce.torch: queue must be a torch.Tensor, got {type(queue)!r}")
        if queue.device != a.device or queue.dtype != a.dtype:
            raise ValueError(
                f"flashnce: queue is {queue.dtype} on {queue.device} but a is {a.dtype} on "
                f"{a.device}; they must match"
            )
        if queue.dim() != 2 or b.dim() != 2 or queue.shape[1] != b.shape[1]:
            raise ValueError(
                f"flashnce: queue must be (K, d) with d = {b.shape[1]}, got {tuple(queue.shape)}"
            )
    if ignore_index is not None and (isinstance(ignore_index, bool) or
                                     not isinstance(ignore_index, int)):
        raise TypeError(f"flashnce: ignore_index must be an int or None, got {ignore_index!r}")
    if targets is not None:
        targets = targets.to(torch.int64)
        if ignore_index is not None:
            targets = torch.where(targets == ignore_index, torch.full_like(targets, -1), targets)
    if labels_a is not None:
        labels_a = labels_a.to(torch.int64)
    if labels_b is not None:
        labels_b = labels_b.to(torch.int64)
    scale = _scale_tensor(logit_scale, a)
    pg = _distributed.resolve_group(distributed, group)
    if pg is not None:
        return _distributed.loss(
            LossFunction.apply, a, b, scale, cfg, targets, labels_a, labels_b, pg, extra_b=queue
        )
    if queue is not None:
        b = torch.cat([b, queue])
    return LossFunction.apply(a, b, scale, targets, labels_a, labels_b, list(cfg.as_ints()))


# ---- modules -------------------------------------------------------------------------------


class _LossModule(torch.nn.Module):
    """The options every module passes to contrastive_loss as they are.  `normalizer` None: the
    loss's preset.  `distributed=True` / `group=`: the loss of the global batch over a
    torch.distributed group, this rank's share (contrastive_loss's docstring;
    flashnce._distributed for the convention)."""

    def __init__(self, reduction="mean", normalizer=None, allow_tf32=False, distributed=False,
                 group=None):
        super().__init__()
        self.reduction, self.normalizer, self.allow_tf32 = reduction, normalizer, allow_tf32
        self.distributed, self.group = bool(distributed), group

    def _options(self) -> dict:
        return dict(reduction=self.reduction, normalizer=self.normalizer,
                    allow_tf32=self.allow_tf32, distributed=self.distributed, group=self.group)


class _FixedTemperature(_LossModule):
    def __init__(self, temperature: float, **options):
        super().__init__(**options)
        if not temperature > 0:
            raise ValueError(f"flashnce: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def _scale(self, like: Tensor) -> Tensor:
        return torch.tensor(1.0 / self.temperature, dtype=torch.float32, device=like.device)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class InfoNCELoss(_FixedTemperature):
    """InfoNCE / cross-entropy over query-key logits: loss(query, keys) with key i the positive of
    query i (needs n <= m: extra keys are negatives), or `targets` (key index per query), or
    `labels=(query_labels, key_labels)`.  Equals F.cross_entropy(query @ keys.T / T, targets,
    ignore_index=ignore_index).  `normalizer="negatives"`: the positives leave the normaliser
    (the VAE-prior / DCL form); `exclude_self`: key i is never a candidate of query i (queries and
    keys the same set)."""

    def __init__(
        self,
        temperature: float = 0.07,
        *,
        similarity: str = "dot",
        reduction: str = "mean",
        normalizer: str = "all",
        exclude_self: bool = False,
        ignore_index: Optional[int] = None,
        allow_tf32: bool = False,
        distributed: bool = False,
        group=None,
    ):
        super().__init__(temperature, reduction=reduction, normalizer=normalizer,
                         allow_tf32=allow_tf32, distributed=distributed, group=group)
        self.similarity = similarity
        self.exclude_self, self.ignore_index = bool(exclude_self), ignore_index

    def forward(
        self, query: Tensor, keys: Tensor, targets: Optional[Tensor] = None, labels=None
    ) -> Tensor:
        return contrastive_loss(
            query,
            keys,
            self._scale(query),
            loss="infonce",
            similarity=self.similarity,
            targets=targets,
            labels=labels,
            exclude_self=self.exclude_self,
            ignore_index=self.ignore_index,
            **self._options(),
        )


class ClipLoss(_LossModule):
    """CLIP's symmetric loss with a learnable temperature.

    `logit_scale` is a parameter holding log(1/temperature), as in CLIP/OpenCLIP; the scale used
    is exp(min(logit_scale, log(max_logit_scale))) (max 100 in CLIP; None: no bound), so the
    gradient reaches logit_scale everywhere inside the bound, the bound included.
    Cosine similarity by default, so the embeddings need no normalising first."""

    def __init__(
        self,
        init_temperature: float = 0.07,
        *,
        learnable: bool = True,
        max_logit_scale: Optional[float] = 100.0,
        similarity: str = "cosine",
        reduction: str = "mean",
        normalizer: str = "all",
        allow_tf32: bool = False,
        distributed: bool = False,
        group=None,
    ):
        super().__init__(reduction, normalizer, allow_tf32, distributed, group)
        if not init_temperature > 0:
            raise ValueError(f"flashnce: init_temperature must be > 0, got {init_temperature}")
        if max_logit_scale is not None and not max_logit_scale > 0:
            raise ValueError(f"flashnce: max_logit_scale must be > 0 or None, got {max_logit_scale}")
        value = torch.tensor(math.log(1.0 / init_temperature), dtype=torch.float32)
        if learnable:
            self.logit_scale = torch.nn.Parameter(value)
        else:
            self.register_buffer("logit_scale", value)
        self.max_logit_scale = max_logit_scale
        self.similarity = similarity

    def scale(self) -> Tensor:
        # Bounded in the log domain, so that logit_scale = log(100) (init_temperature = 0.01) keeps
        # its gradient: exp() then clamp(100) cut it (exp(log 100) in f32 is above 100).  Not
        # torch.clamp either: its gradient is 0 at the bound itself, and it compares with the
        # double log 100, below f32(log 100); hence the f32-rounded bound.  Beyond the bound the
        # gradient is 0, as with open_clip's clamp of the parameter in its training loop.
        ls = self.logit_scale
        if self.max_logit_scale is not None:
            bound = float(torch.tensor(math.log(self.max_logit_scale), dtype=torch.float32))
            ls = torch.where(ls > bound, bound, ls)  # a host scalar: no device copy
        return ls.exp()

    def forward(self, image: Tensor, text: Tensor, logit_bias=None) -> Tensor:
        """`logit_bias` as open_clip's ClipLoss takes it: it cancels exactly (see
        contrastive_loss), so the loss is unchanged and the bias's gradient is 0."""
        return contrastive_loss(
            image,
            text,
            self.scale().to(image.device),
            loss="clip",
            similarity=self.similarity,
            logit_bias=logit_bias,
            **self._options(),
        )


class NTXentLoss(_FixedTemperature):
    """SimCLR's NT-Xent: loss(z1, z2) for two views of a batch (or loss(z) with z = [z1; z2]):
    cosine similarity, each view's positive is its other view, self-similarity excluded.
    `normalizer="negatives"` drops the positive from the normaliser (DCLLoss)."""

    def __init__(
        self,
        temperature: float = 0.5,
        *,
        reduction: str = "mean",
        normalizer: str = "all",
        allow_tf32: bool = False,
        distributed: bool = False,
        group=None,
    ):
        super().__init__(temperature, reduction=reduction, normalizer=normalizer,
                         allow_tf32=allow_tf32, distributed=distributed, group=group)

    def forward(self, z1: Tensor, z2: Optional[Tensor] = None) -> Tensor:
        z = z1 if z2 is None else torch.cat([z1, z2], dim=0)
        return contrastive_loss(
            z,
            None,
            self._scale(z),
            loss="nt_xent",
            **self._options(),
        )


class DCLLoss(NTXentLoss):
    """Decoupled contrastive learning (Yeh et al.): NT-Xent with the positive removed from the
    normaliser, loss_i = -s_i,pos + log mean_{negatives} e^{s_ij}.  The mean (not the sum) makes it
    lightly's DCLLoss (without its weight function) minus log(2n - 2), with the same gradients.
    Temperature 0.1 as lightly's."""

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        reduction: str = "mean",
        allow_tf32: bool = False,
        distributed: bool = False,
        group=None,
    ):
        super().__init__(
            temperature,
            reduction=reduction,
            normalizer="negatives",
            allow_tf32=allow_tf32,
            distributed=distributed,
            group=group,
        )


class SupConLoss(_FixedTemperature):
    """Supervised contrastive loss (Khosla et al., L_out): loss(features, labels) with features
    (n, d), or (batch, views, d) as in the reference implementation (views stacked view-major,
    labels repeated).  Cosine similarity, positives share a label, self excluded.
    loss(features, labels, ref_emb, ref_labels) (pytorch-metric-learning's form): the anchors are
    `features`, the candidates `ref_emb` with `ref_labels`, no self to exclude unless
    `exclude_self=True` (ref_emb row i is anchor i's own)."""

    def __init__(
        self,
        temperature: float = 0.07,
        *,
        reduction: str = "mean",
        normalizer: str = "all",
        exclude_self: bool = False,
        allow_tf32: bool = False,
        distributed: bool = False,
        group=None,
    ):
        super().__init__(temperature, reduction=reduction, normalizer=normalizer,
                         allow_tf32=allow_tf32, distributed=distributed, group=group)
        self.exclude_self = bool(exclude_self)

    def forward(
        self,
        features: Tensor,
        labels: Tensor,
        ref_emb: Optional[Tensor] = None,
        ref_labels: Optional[Tensor] = None,
    ) -> Tensor:
        if (ref_emb is None) != (ref_labels is None):
            raise ValueError("flashnce: SupConLoss needs ref_emb and ref_labels together")
        features, labels = self._flatten(features, labels)
        if ref_emb is not None:
            ref_emb, ref_labels = self._flatten(ref_emb, ref_labels)
        return contrastive_loss(
            features,
            ref_emb,
            self._scale(features),
            loss="supcon",
            labels=labels if ref_emb is None else (labels, ref_labels),
            exclude_self=self.exclude_self,
            **self._options(),
        )

    @staticmethod
    def _flatten(features: Tensor, labels: Tensor):
        if isinstance(features, Tensor) and features.dim() == 3:
            views = features.shape[1]
            features = torch.cat(torch.unbind(features, dim=1), dim=0)
            labels = labels.repeat(views)
        return features, labels


class VAEPriorLoss(_LossModule):
    """The VAE-prior form of InfoNCE: loss(z, z_prior) with a Gaussian prior similarity
    -||z_i - z'_j||^2 at scale 1/(2 sigma^2), normaliser over the negatives only (with the
    log|Z| constant), so that -loss estimates f(z, z') - log E_q e^{f(z, z'')}."""

    def __init__(
        self, sigma: float = 1.0, *, reduction: str = "mean", distributed: bool = False, group=None
    ):
        super().__init__(reduction, distributed=distributed, group=group)
        if not sigma > 0:
            raise ValueError(f"flashnce: sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)

    def forward(self, z: Tensor, z_prior: Tensor) -> Tensor:
        scale = torch.tensor(1.0 / (2.0 * self.sigma**2), dtype=torch.float32, device=z.device)
        return contrastive_loss(
            z, z_prior, scale, loss="vae_prior", **self._options()
        )

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class MoCoLoss(_FixedTemperature):
    """MoCo's InfoNCE: loss(query, keys, queue=None) with key i the positive of query i and every
    other key plus the queue (K, d) as negatives (MoCo v3 counts the in-batch keys; v1/v2 with a
    queue, the queue's negatives).  Cosine similarity; keys normally come from the momentum
    encoder without gradient.  The queue is passed in: enqueueing (e.g. the gathered keys after
    the step) is the caller's.  Distributed: every rank's keys are gathered (MoCo v3's
    concat_all_gather), the queue is each rank's own copy.  Temperature 0.2 (MoCo v2/v3)."""

    def __init__(
        self,
        temperature: float = 0.2,
        *,
        reduction: str = "mean",
        normalizer: str = "all",
        allow_tf32: bool = False,
        distributed: bool = False,
        group=None,
    ):
        super().__init__(temperature, reduction=reduction, normalizer=normalizer,
                         allow_tf32=allow_tf32, distributed=distributed, group=group)

    def forward(self, query: Tensor, keys: Tensor, queue: Optional[Tensor] = None) -> Tensor:
        return contrastive_loss(
            query,
            keys,
            self._scale(query),
            loss="moco",
            queue=queue,
            **self._options(),
        )
