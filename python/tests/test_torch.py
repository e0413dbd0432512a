"""flashnce.torch against plain-PyTorch formulations of each loss (float64, the full logit
matrix): values and .backward() gradients, logit_scale.grad included; gradcheck; torch.compile;
the CUDA path where a GPU is present."""

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import flashnce  # noqa: E402
import flashnce.torch as ft  # noqa: E402

RTOL, ATOL = 2e-5, 2e-6


def _close(got, want, rtol=RTOL, atol=ATOL):
    torch.testing.assert_close(
        got.detach().double().cpu(), want.detach().double().cpu(), rtol=rtol, atol=atol
    )


def _leaf(x, dtype=torch.float64):
    return x.detach().to(dtype).clone().requires_grad_(True)


# ---- plain PyTorch formulations (float64, n x m logits materialised) ------------------------


def plain_infonce(q, k, scale, targets=None):
    logits = scale * q @ k.T
    if targets is None:
        targets = torch.arange(q.shape[0])
    return F.cross_entropy(logits, targets, ignore_index=-1)


def plain_clip(img, txt, scale):
    logits = scale * F.normalize(img, dim=1, eps=1e-12) @ F.normalize(txt, dim=1, eps=1e-12).T
    t = torch.arange(img.shape[0])
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


def plain_nt_xent(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z.shape[0]
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    t = (torch.arange(n) + n // 2) % n
    return F.cross_entropy(logits, t)


def plain_supcon(features, labels, temperature):
    # Khosla et al. L_out with anchors = all views; anchors without positives are skipped.
    z = F.normalize(features, dim=1)
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    count = pos.sum(1)
    mean_log_prob_pos = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(1) / count.clamp(
        min=1
    )
    valid = count > 0
    return -(mean_log_prob_pos[valid]).mean()


def plain_vae_prior(z, zp, sigma):
    s = -torch.cdist(z, zp).pow(2) / (2 * sigma**2)
    n, m = s.shape
    diag = torch.zeros(n, m, dtype=torch.bool)
    diag[torch.arange(n), torch.arange(n)] = True
    neg = s.masked_fill(diag, float("-inf"))
    per_row = torch.logsumexp(neg, dim=1) - math.log(m - 1) - s[diag]
    return per_row.mean()


# ---- modules vs the formulations ------------------------------------------------------------


def test_infonce_loss_module():
    torch.manual_seed(0)
    q, k = torch.randn(6, 5), torch.randn(9, 5)
    fn = ft.InfoNCELoss(temperature=0.3)
    qa, ka = q.clone().requires_grad_(), k.clone().requires_grad_()
    loss = fn(qa, ka)
    loss.backward()
    qr, kr = _leaf(q), _leaf(k)
    want = plain_infonce(qr, kr, 1 / 0.3)
    want.backward()
    _close(loss, want)
    _close(qa.grad, qr.grad)
    _close(ka.grad, kr.grad)
    assert loss.dtype == torch.float32 and loss.shape == ()


def test_infonce_with_targets_and_ignored_rows():
    torch.manual_seed(1)
    q, k = torch.randn(5, 4), torch.randn(7, 4)
    t = torch.tensor([3, -1, 6, 0, 3])
    qa, ka = q.clone().requires_grad_(), k.clone().requires_grad_()
    loss = ft.InfoNCELoss(temperature=0.5)(qa, ka, targets=t)
    loss.backward()
    qr, kr = _leaf(q), _leaf(k)
    want = plain_infonce(qr, kr, 2.0, targets=t)
    want.backward()
    _close(loss, want)
    _close(qa.grad, qr.grad)
    _close(ka.grad, kr.grad)


def test_clip_loss_module_with_learnable_scale():
    torch.manual_seed(2)
    img, txt = torch.randn(8, 6), torch.randn(8, 6)
    fn = ft.ClipLoss(init_temperature=0.1)
    ia, ta = img.clone().requires_grad_(), txt.clone().requires_grad_()
    loss = fn(ia, ta)
    loss.backward()
    ir, tr = _leaf(img), _leaf(txt)
    ls = torch.tensor(math.log(10.0), dtype=torch.float64, requires_grad=True)
    want = plain_clip(ir, tr, ls.exp().clamp(max=100.0))
    want.backward()
    _close(loss, want)
    _close(ia.grad, ir.grad)
    _close(ta.grad, tr.grad)
    assert fn.logit_scale.grad is not None and fn.logit_scale.grad.shape == ()
    _close(fn.logit_scale.grad, ls.grad, rtol=1e-5, atol=1e-6)


def test_clip_loss_clamp_stops_scale_gradient():
    torch.manual_seed(3)
    fn = ft.ClipLoss(init_temperature=0.001, max_logit_scale=100.0)  # exp(log 1000) > 100
    loss = fn(torch.randn(4, 3), torch.randn(4, 3))
    loss.backward()
    assert float(fn.logit_scale.grad) == 0.0
    fixed = ft.ClipLoss(learnable=False)
    assert not any(p.requires_grad for p in fixed.parameters())


def test_clip_loss_gradient_flows_at_the_bound():
    # init_temperature 0.01: logit_scale = log(100) is the bound itself; the gradient must flow
    # (exp first, then clamp(100) cut it: exp(log 100) in f32 is above 100).
    torch.manual_seed(13)
    img, txt = torch.randn(6, 4), torch.randn(6, 4)
    fn = ft.ClipLoss(init_temperature=0.01, max_logit_scale=100.0)
    fn(img, txt).backward()
    ls = torch.tensor(math.log(100.0), dtype=torch.float64, requires_grad=True)
    plain_clip(_leaf(img), _leaf(txt), ls.exp()).backward()
    assert float(fn.logit_scale.grad) != 0.0
    _close(fn.logit_scale.grad, ls.grad, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="max_logit_scale"):
        ft.ClipLoss(max_logit_scale=0.0)
    assert ft.ClipLoss(init_temperature=1e-4, max_logit_scale=None).scale().item() > 9999.0


def test_clip_loss_logit_bias_cancels_as_in_open_clip():
    # open_clip's ClipLoss(logit_bias=b): logits = scale * sim + b, then cross entropy both ways.
    torch.manual_seed(21)
    img, txt = torch.randn(7, 5), torch.randn(7, 5)
    fn = ft.ClipLoss(init_temperature=0.1)
    ia, ta = img.clone().requires_grad_(), txt.clone().requires_grad_()
    bias = torch.tensor(-3.5, requires_grad=True)
    loss = fn(ia, ta, logit_bias=bias)
    loss.backward()
    ir, tr = _leaf(img), _leaf(txt)
    br = torch.tensor(-3.5, dtype=torch.float64, requires_grad=True)
    logits = 10.0 * F.normalize(ir, dim=1) @ F.normalize(tr, dim=1).T + br
    labels = torch.arange(7)
    want = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    want.backward()
    _close(loss, want)
    _close(ia.grad, ir.grad)
    _close(ta.grad, tr.grad)
    assert abs(float(br.grad)) < 1e-12  # the naive bias gradient: 0 up to rounding
    assert float(bias.grad) == 0.0
    # the same loss as without a bias, for a number too; a NaN bias gives a NaN loss
    plain = fn(img, txt).item()
    assert fn(img, txt, logit_bias=2.0).item() == plain
    assert math.isnan(fn(img, txt, logit_bias=torch.tensor(float("nan"))).item())
    none = ft.contrastive_loss(img, txt, 10.0, loss="clip", reduction="none", logit_bias=bias)
    assert none.shape == (14,)
    with pytest.raises(ValueError, match="logit_bias"):
        fn(img, txt, logit_bias=torch.zeros(7))
    with pytest.raises(TypeError, match="logit_bias"):
        fn(img, txt, logit_bias="1")


def test_moco_loss_module_with_queue():
    torch.manual_seed(14)
    q, k, queue = torch.randn(4, 5), torch.randn(4, 5), torch.randn(6, 5)
    qa = q.clone().requires_grad_()
    loss = ft.MoCoLoss(temperature=0.2)(qa, k, queue)
    loss.backward()
    qr = _leaf(q)
    logits = F.normalize(qr, dim=1) @ F.normalize(torch.cat([k, queue]).double(), dim=1).T / 0.2
    want = F.cross_entropy(logits, torch.arange(4))
    want.backward()
    _close(loss, want)
    _close(qa.grad, qr.grad)
    _close(ft.MoCoLoss(temperature=0.2)(q, k), F.cross_entropy(  # no queue: in-batch keys only
        F.normalize(q.double(), dim=1) @ F.normalize(k.double(), dim=1).T / 0.2, torch.arange(4)))
    with pytest.raises(ValueError, match="queue must be"):
        ft.MoCoLoss()(q, k, torch.randn(6, 4))
    with pytest.raises(ValueError, match="queue is"):
        ft.MoCoLoss()(q, k, queue.double())
    with pytest.raises(ValueError, match="queue needs b"):
        ft.contrastive_loss(q, None, 1.0, loss="nt_xent", queue=queue)


@pytest.mark.parametrize("ignore_index", [0, -100, 3])
def test_ignore_index_as_torch(ignore_index):
    torch.manual_seed(15)
    q, k = torch.randn(6, 4), torch.randn(5, 4)
    t = torch.tensor([0, 3, 4, 0, 1, 2])
    if ignore_index == -100:
        t[2] = -100
    qa = q.clone().requires_grad_()
    loss = ft.InfoNCELoss(temperature=0.5, ignore_index=ignore_index)(qa, k, targets=t)
    loss.backward()
    qr = _leaf(q)
    want = F.cross_entropy(2.0 * qr @ k.double().T, t, ignore_index=ignore_index)
    want.backward()
    _close(loss, want)
    _close(qa.grad, qr.grad)
    with pytest.raises(TypeError, match="ignore_index"):
        ft.contrastive_loss(q, k, 1.0, targets=t, ignore_index=0.5)


def test_dcl_loss_is_lightly_dcl_minus_log_2n_minus_2():
    torch.manual_seed(16)
    n = 5
    z1, z2 = torch.randn(n, 4), torch.randn(n, 4)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = ft.DCLLoss(temperature=0.1)(a1, a2)
    loss.backward()
    r1, r2 = _leaf(z1), _leaf(z2)
    z = F.normalize(torch.cat([r1, r2]), dim=1)
    s = z @ z.T / 0.1
    partner = (torch.arange(2 * n) + n) % (2 * n)
    neg = torch.ones(2 * n, 2 * n, dtype=torch.bool)
    neg[torch.arange(2 * n), torch.arange(2 * n)] = False
    neg[torch.arange(2 * n), partner] = False
    # lightly's DCLLoss (weight_fn None): -s_pos + log sum over negatives, both views, mean.
    lightly = (torch.logsumexp(s.masked_fill(~neg, float("-inf")), dim=1)
               - s[torch.arange(2 * n), partner]).mean()
    want = lightly - math.log(2 * n - 2)
    want.backward()
    _close(loss, want)
    _close(a1.grad, r1.grad)
    _close(a2.grad, r2.grad)
    _close(ft.NTXentLoss(temperature=0.1, normalizer="negatives")(z1, z2), want)


def test_supcon_with_ref_emb_and_exclude_self_options():
    torch.manual_seed(17)
    f, lab = torch.randn(5, 4), torch.tensor([0, 1, 0, 2, 1])
    ref, ref_lab = torch.randn(7, 4), torch.tensor([0, 0, 1, 3, 1, 2, 0])
    fa = f.clone().requires_grad_()
    loss = ft.SupConLoss(temperature=0.3)(fa, lab, ref_emb=ref, ref_labels=ref_lab)
    loss.backward()
    fr = _leaf(f)
    s = F.normalize(fr, dim=1) @ F.normalize(ref.double(), dim=1).T / 0.3
    log_prob = s - torch.logsumexp(s, dim=1, keepdim=True)
    pos = lab[:, None] == ref_lab[None, :]
    want = -((log_prob * pos).sum(1) / pos.sum(1)).mean()
    want.backward()
    _close(loss, want)
    _close(fa.grad, fr.grad)
    # ref_emb = the features themselves with exclude_self: the self-mode SupCon
    same = ft.SupConLoss(temperature=0.3, exclude_self=True)(f, lab, ref_emb=f, ref_labels=lab)
    _close(same, ft.SupConLoss(temperature=0.3)(f, lab))
    with pytest.raises(ValueError, match="ref_emb and ref_labels"):
        ft.SupConLoss()(f, lab, ref_emb=ref)


def test_infonce_exclude_self_matches_masked_cross_entropy():
    torch.manual_seed(18)
    x, lab = torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 2, 2])
    loss = ft.InfoNCELoss(temperature=0.5, exclude_self=True)(x, x, labels=(lab, lab))
    s = (2.0 * x.double() @ x.double().T).fill_diagonal_(float("-inf"))
    log_prob = s - torch.logsumexp(s, dim=1, keepdim=True)
    pos = (lab[:, None] == lab[None, :]) & ~torch.eye(6, dtype=torch.bool)
    want = -(torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(1) / pos.sum(1)).mean()
    _close(loss, want)


def test_nt_xent_loss_module():
    torch.manual_seed(4)
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = ft.NTXentLoss(temperature=0.5)(a1, a2)
    loss.backward()
    r1, r2 = _leaf(z1), _leaf(z2)
    want = plain_nt_xent(r1, r2, 0.5)
    want.backward()
    _close(loss, want)
    _close(a1.grad, r1.grad)
    _close(a2.grad, r2.grad)


@pytest.mark.parametrize("three_d", [False, True])
def test_supcon_loss_module(three_d):
    torch.manual_seed(5)
    labels = torch.tensor([0, 1, 0, 2, 1, 3])  # label 3 alone: an anchor without positives
    if three_d:
        feats = torch.randn(6, 2, 5)  # (batch, views, d)
        flat = torch.cat(torch.unbind(feats, dim=1))
        flat_labels = labels.repeat(2)
    else:
        feats = torch.randn(6, 5)
        flat, flat_labels = feats, labels
    fa = feats.clone().requires_grad_()
    loss = ft.SupConLoss(temperature=0.2)(fa, labels)
    loss.backward()
    fr = _leaf(feats)
    flat_r = torch.cat(torch.unbind(fr, dim=1)) if three_d else fr
    want = plain_supcon(flat_r, flat_labels, 0.2)
    want.backward()
    _close(loss, want)
    _close(fa.grad, fr.grad)
    assert flat.shape[0] == flat_labels.shape[0]


def test_vae_prior_loss_module():
    torch.manual_seed(6)
    z, zp = torch.randn(5, 3), torch.randn(7, 3)
    za, pa = z.clone().requires_grad_(), zp.clone().requires_grad_()
    loss = ft.VAEPriorLoss(sigma=0.8)(za, pa)
    loss.backward()
    zr, pr = _leaf(z), _leaf(zp)
    want = plain_vae_prior(zr, pr, 0.8)
    want.backward()
    _close(loss, want)
    _close(za.grad, zr.grad)
    _close(pa.grad, pr.grad)


def test_reduction_none_backward_with_weights():
    torch.manual_seed(7)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    s = torch.tensor(1.5)
    aa, ba, sa = a.clone().requires_grad_(), b.clone().requires_grad_(), s.clone().requires_grad_()
    per = ft.contrastive_loss(aa, ba, sa, loss="clip", similarity="dot", reduction="none")
    assert per.shape == (8,)
    w = torch.arange(1.0, 9.0)
    (per * w).sum().backward()
    ar, br, sr = _leaf(a), _leaf(b), _leaf(s)
    logits = sr * ar @ br.T
    t = torch.arange(4)
    want = torch.cat(
        [
            F.cross_entropy(logits, t, reduction="none"),
            F.cross_entropy(logits.T, t, reduction="none"),
        ]
    )
    (want * w.double()).sum().backward()
    _close(per, want)
    _close(aa.grad, ar.grad)
    _close(ba.grad, br.grad)
    _close(sa.grad, sr.grad, rtol=1e-5, atol=1e-5)


def test_labels_pair_and_int32_labels():
    torch.manual_seed(8)
    a, b = torch.randn(5, 4), torch.randn(6, 4)
    la = torch.tensor([0, 1, 2, 0, 1], dtype=torch.int32)
    lb = torch.tensor([1, 0, 0, 2, 1, 1], dtype=torch.int32)
    got = ft.contrastive_loss(a, b, 1.0, labels=(la, lb))
    logits = a.double() @ b.double().T
    pos = la[:, None] == lb[None, :]
    per = torch.logsumexp(logits, 1) - (logits * pos).sum(1) / pos.sum(1)
    _close(got, per.mean())


def test_half_precision_cpu_tensors():
    torch.manual_seed(9)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    for dtype in (torch.float16, torch.bfloat16):
        ah, bh = a.to(dtype).requires_grad_(), b.to(dtype).requires_grad_()
        loss = ft.contrastive_loss(ah, bh, 2.0, loss="clip")
        loss.backward()
        assert ah.grad.dtype == dtype
        # The reference widens the rounded inputs exactly; only output rounding differs.
        ar, br = _leaf(ah), _leaf(bh)
        want = plain_clip(ar, br, 2.0)
        want.backward()
        _close(loss, want)
        tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
        _close(ah.grad, ar.grad, rtol=tol, atol=tol / 10)


def test_gradcheck_tiny():
    # The library has no float64 dtype: gradcheck runs on float32 inputs, whose central
    # differences (eps 1e-3) carry ~1e-4 relative rounding noise; the tolerances say so.
    torch.manual_seed(10)
    a = torch.randn(3, 2, requires_grad=True)
    b = torch.randn(4, 2, requires_grad=True)
    s = torch.tensor(1.3, requires_grad=True)
    for loss_name in ("infonce", "clip", "vae_prior"):
        fn = lambda a_, b_, s_: ft.contrastive_loss(a_, b_, s_, loss=loss_name)  # noqa: E731
        with pytest.warns(UserWarning, match="double precision"):
            assert torch.autograd.gradcheck(fn, (a, b, s), eps=1e-3, atol=2e-3, rtol=2e-3)


def test_custom_ops_are_registered_with_fake_kernels():
    torch.library.opcheck(
        torch.ops.flashnce.forward.default,
        (
            torch.randn(4, 3),
            torch.randn(5, 3),
            torch.tensor([1.0]),
            None,
            None,
            None,
            list(flashnce.make_config("clip").as_ints()),
        ),
        test_utils=("test_schema", "test_faketensor"),
    )


def test_torch_compile_aot_eager():
    torch.manual_seed(11)
    fn = ft.ClipLoss(init_temperature=0.2)
    img, txt = torch.randn(6, 4), torch.randn(6, 4)

    def step(x, y):
        return fn(x, y) * 2.0

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    xa, ya = img.clone().requires_grad_(), txt.clone().requires_grad_()
    got = compiled(xa, ya)
    got.backward()
    grad_scale = fn.logit_scale.grad.clone()
    fn.logit_scale.grad = None
    xe, ye = img.clone().requires_grad_(), txt.clone().requires_grad_()
    want = step(xe, ye)
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(xa.grad, xe.grad)
    torch.testing.assert_close(ya.grad, ye.grad)
    torch.testing.assert_close(grad_scale, fn.logit_scale.grad)


def test_errors_before_the_call():
    a = torch.randn(3, 2)
    with pytest.raises(TypeError, match="must match"):
        ft.contrastive_loss(a, a.half(), 1.0)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16, got float64"):
        ft.contrastive_loss(a.double(), a.double(), 1.0)
    with pytest.raises(TypeError, match="logit_scale must be float32"):
        ft.contrastive_loss(a, a, torch.tensor(1.0, dtype=torch.float64))
    with pytest.raises(flashnce.InvalidValueError, match="VIEW_PAIRS"):
        ft.contrastive_loss(a, None, 1.0, positives="diagonal")


def test_functional_core_on_torch_tensors_returns_tensors():
    a, b = torch.randn(3, 2), torch.randn(3, 2)
    loss, row_lse, col_lse = flashnce.forward(a, b, 1.0, loss="clip")
    assert isinstance(loss, torch.Tensor) and isinstance(col_lse, torch.Tensor)
    ga, gb, gs = flashnce.backward(a, b, 1.0, row_lse, col_lse, loss="clip")
    assert isinstance(ga, torch.Tensor) and ga.shape == a.shape and gs.shape == (1,)


# ---- CUDA (skips without a device) -----------------------------------------------------------

cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and flashnce.backend_is_available("cuda")),
    reason="needs a CUDA device and the CUDA backend (built with nvcc)",
)


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_clip_matches_cpu_reference(dtype):
    torch.manual_seed(12)
    img, txt = torch.randn(300, 64).to(dtype), torch.randn(257, 64).to(dtype)
    for loss_name, x, y in (("clip", img[:257], txt), ("infonce", img[:200], txt)):
        xg = x.cuda().requires_grad_()
        yg = y.cuda().requires_grad_()
        sg = torch.tensor(14.0, device="cuda", requires_grad=True)
        loss = ft.contrastive_loss(xg, yg, sg, loss=loss_name)
        loss.backward()
        xc, yc = x.clone().requires_grad_(), y.clone().requires_grad_()
        sc = torch.tensor(14.0, requires_grad=True)
        want = ft.contrastive_loss(xc, yc, sc, loss=loss_name)
        want.backward()
        tol = 1e-4 if dtype == torch.float32 else 2e-2
        _close(loss, want, rtol=tol, atol=tol)
        _close(xg.grad.float(), xc.grad.float(), rtol=tol, atol=tol)
        _close(yg.grad.float(), yc.grad.float(), rtol=tol, atol=tol)
        _close(sg.grad, sc.grad, rtol=tol, atol=tol)


@cuda
def test_cuda_runs_on_current_stream_and_modules_work():
    torch.manual_seed(13)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        a = torch.randn(128, 32, device="cuda", requires_grad=True)
        b = torch.randn(128, 32, device="cuda", requires_grad=True)
        fn = ft.ClipLoss().cuda()
        loss = fn(a, b)
        loss.backward()
    s.synchronize()
    want = ft.ClipLoss()(a.detach().cpu(), b.detach().cpu())
    _close(loss, want, rtol=1e-4, atol=1e-4)
    for mod, args in (
        (ft.NTXentLoss(), (a, b)),
        (ft.SupConLoss(), (a, torch.arange(128, device="cuda") % 7)),
        (ft.VAEPriorLoss(), (a, b)),
        (ft.InfoNCELoss(), (a, b)),
    ):
        got = mod(*args)
        cpu_args = tuple(x.detach().cpu() for x in args)
        _close(got, mod(*cpu_args), rtol=1e-4, atol=1e-4)


@cuda
def test_cuda_device_mismatch_is_caught():
    a = torch.randn(4, 3, device="cuda")
    with pytest.raises(ValueError, match="is on cpu"):
        ft.contrastive_loss(a, torch.randn(4, 3), 1.0)
