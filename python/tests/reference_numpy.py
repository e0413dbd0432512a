"""The losses written directly from DESIGN.md §1 in float64 NumPy, with explicit masks and the
n x m logit matrix: an independent formulation for the tests (shares no code with the package).
Gradients are taken by central finite differences of this formula."""

import numpy as np


def similarity(a, b, kind):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if kind == "dot":
        return a @ b.T
    if kind == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return an @ bn.T
    if kind == "neg_sq_dist":
        diff = a[:, None, :] - b[None, :, :]
        return -(diff**2).sum(-1)
    raise ValueError(kind)


def masks(
    n,
    m,
    positives,
    *,
    targets=None,
    labels_a=None,
    labels_b=None,
    exclude_self=False,
    normalizer="all",
):
    """Boolean P (positives) and Z (normaliser) of shape (n, m)."""
    P = np.zeros((n, m), bool)
    if positives == "diagonal":
        for i in range(min(n, m)):
            P[i, i] = True
    elif positives == "targets":
        for i, t in enumerate(targets):
            if 0 <= t < m:
                P[i, t] = True
    elif positives == "labels":
        P = np.asarray(labels_a)[:, None] == np.asarray(labels_b)[None, :]
    elif positives == "view_pairs":
        for i in range(n):
            P[i, (i + n // 2) % n] = True
    else:
        raise ValueError(positives)
    E = np.zeros((n, m), bool)
    if exclude_self:
        for i in range(min(n, m)):
            E[i, i] = True
    P = P & ~E
    Z = ~E
    if normalizer == "negatives":
        Z = Z & ~P
    return P, Z


def _lse(x):
    if x.size == 0:
        return -np.inf
    mx = x.max()
    return mx + np.log(np.exp(x - mx).sum())


def row_terms(S, P, Z, normalizer):
    """Per-row (loss, valid, lse) over logits S."""
    n = S.shape[0]
    loss = np.zeros(n)
    valid = np.zeros(n, bool)
    lse = np.zeros(n)
    for i in range(n):
        lse[i] = _lse(S[i, Z[i]])
        if P[i].any() and Z[i].any():
            valid[i] = True
            loss[i] = lse[i] - S[i, P[i]].mean()
            if normalizer == "negatives":
                loss[i] -= np.log(Z[i].sum())
    return loss, valid, lse


def loss(
    a,
    b,
    scale,
    *,
    similarity_kind="dot",
    positives="diagonal",
    targets=None,
    labels_a=None,
    labels_b=None,
    exclude_self=False,
    normalizer="all",
    direction="rows",
    reduction="mean",
):
    """Returns (loss, row_lse, col_lse or None); loss is a float, or a vector for 'none'.
    b None = self mode (b = a, labels_b = labels_a, exclude_self on)."""
    if b is None:
        b, labels_b, exclude_self = a, labels_a, True
    n, m = len(a), len(b)
    S = scale * similarity(a, b, similarity_kind)
    P, Z = masks(
        n,
        m,
        positives,
        targets=targets,
        labels_a=labels_a,
        labels_b=labels_b,
        exclude_self=exclude_self,
        normalizer=normalizer,
    )
    lr, vr, lse_r = row_terms(S, P, Z, normalizer)
    if direction == "rows":
        if reduction == "none":
            return lr, lse_r, None
        if reduction == "sum":
            return lr.sum(), lse_r, None
        return (lr[vr].mean() if vr.any() else 0.0), lse_r, None
    lc, vc, lse_c = row_terms(S.T, P.T, Z.T, normalizer)
    if reduction == "none":
        return np.concatenate([lr, lc]), lse_r, lse_c
    if reduction == "sum":
        return 0.5 * (lr.sum() + lc.sum()), lse_r, lse_c
    mr = lr[vr].mean() if vr.any() else 0.0
    mc = lc[vc].mean() if vc.any() else 0.0
    return 0.5 * (mr + mc), lse_r, lse_c


def finite_difference_grads(a, b, scale, grad_loss, eps=1e-6, **kw):
    """Central differences of sum(grad_loss * loss(...)) w.r.t. a, b (None in self mode), scale."""
    a = np.asarray(a, np.float64).copy()
    b = None if b is None else np.asarray(b, np.float64).copy()
    g = np.asarray(grad_loss, np.float64)

    def f(aa, bb, ss):
        return float(np.sum(g * loss(aa, bb, ss, **kw)[0]))

    ga = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        ap, am = a.copy(), a.copy()
        ap[idx] += eps
        am[idx] -= eps
        ga[idx] = (f(ap, b, scale) - f(am, b, scale)) / (2 * eps)
    gb = None
    if b is not None:
        gb = np.zeros_like(b)
        for idx in np.ndindex(b.shape):
            bp, bm = b.copy(), b.copy()
            bp[idx] += eps
            bm[idx] -= eps
            gb[idx] = (f(a, bp, scale) - f(a, bm, scale)) / (2 * eps)
    gs = (f(a, b, scale + eps) - f(a, b, scale - eps)) / (2 * eps)
    return ga, gb, gs
