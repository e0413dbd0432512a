"""flashnce.torch on torch.distributed (all-gather mode) against the single-process global batch:
world sizes 2 and 3 spawned on gloo (CPU), uneven shards where the loss allows them, every module
and the functional form with a learnable logit_scale.  The convention checked (flashnce/
_distributed.py): mean over ranks of the loss = the global loss; the per-rank gradients of the
embeddings, concatenated and divided by W (what DDP's averaging does), = the global gradient;
mean over ranks of logit_scale's gradient = the global one.  A DDP model closes it end to end.
The same cases run on NCCL when two or more GPUs exist."""

import math
import os
import pathlib
import tempfile

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import flashnce.torch as ft  # noqa: E402

if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

# name -> (options, rows per rank for W = 2 and W = 3, columns per rank or None (self mode), extra)
# Sizes are per rank; `cols` None means self mode.  extra: "targets", "labels", "queue".
CASES = {
    "infonce_diag_equal": (dict(loss="infonce"), [4, 3], [4, 3], None),
    "infonce_more_keys": (dict(loss="infonce", similarity="cosine"), [3, 2], [5, 4], None),
    "infonce_targets": (dict(loss="infonce"), [4, 5], [6, 3], "targets"),
    "infonce_labels_negatives": (
        dict(loss="infonce", normalizer="negatives"), [4, 3], [5, 4], "labels"),
    "clip": (dict(loss="clip"), [4, 3], [4, 3], None),
    "clip_sum_uneven_dot": (
        dict(loss="clip", similarity="dot", reduction="sum"), [3, 2], [4, 4], None),
    "clip_labels": (dict(loss="clip", positives="labels"), [4, 3], [3, 4], "labels"),
    "nt_xent": (dict(loss="nt_xent"), [6, 4], None, None),
    "supcon": (dict(loss="supcon"), [5, 3], None, "labels"),
    "vae_prior": (dict(loss="vae_prior"), [3, 4], [5, 4], None),
    "moco_queue": (dict(loss="moco"), [3, 4], [3, 4], "queue"),
    "infonce_none": (dict(loss="infonce", reduction="none"), [3, 2], [4, 3], None),
    "clip_none": (dict(loss="clip", reduction="none"), [3, 2], [3, 2], None),
}
D, QUEUE = 5, 6


def _sizes(spec, world):
    # The W = 2 list, extended to W = 3 with one more rank of the first rank's size + 2 (parity kept).
    return spec + [spec[0] + 2] if world == 3 else list(spec)


def _case(name, world):
    """The global batch of one case and its shards (deterministic: rebuilt in every process)."""
    opts, rows, cols, extra = CASES[name]
    g = torch.Generator().manual_seed(sum(map(ord, name)) + world)
    rows = _sizes(rows, world)
    cols = None if cols is None else _sizes(cols, world)
    a = [torch.randn(n, D, generator=g) for n in rows]
    b = None if cols is None else [torch.randn(m, D, generator=g) for m in cols]
    c = dict(opts=dict(opts), a=a, b=b, targets=None, labels=None, queue=None)
    if extra == "targets":
        c["targets"] = [torch.randint(-1, m, (n,), generator=g) for n, m in zip(rows, cols)]
    elif extra == "labels":
        c["labels_a"] = [torch.randint(0, 3, (n,), generator=g) for n in rows]
        for r, la in enumerate(c["labels_a"]):
            la[0] = 50 + r  # a label of its own: a row without positives, not counted by MEAN
        if cols is not None:
            c["labels_b"] = [torch.randint(0, 3, (m,), generator=g) for m in cols]
    elif extra == "queue":
        c["queue"] = torch.randn(QUEUE, D, generator=g)
    c["scale"] = 1.0 + torch.rand((), generator=g).item() * 3.0
    return c


def _labels(c, r):
    if "labels_a" not in c:
        return None
    if c["b"] is None:
        return c["labels_a"][r]
    return (c["labels_a"][r], c["labels_b"][r])


def _run_rank(name, world, rank, device="cpu"):
    """This rank's loss and gradients (a, b, logit_scale) with distributed=True."""
    c = _case(name, world)

    def dev(x):
        return None if x is None else x.to(device)

    a = c["a"][rank].to(device).requires_grad_()
    b = None if c["b"] is None else c["b"][rank].to(device).requires_grad_()
    s = torch.tensor(c["scale"], device=device, requires_grad=True)
    t = None if c["targets"] is None else dev(c["targets"][rank])
    labels = _labels(c, rank)
    labels = tuple(map(dev, labels)) if isinstance(labels, tuple) else dev(labels)
    loss = ft.contrastive_loss(a, b, s, targets=t, labels=labels, queue=dev(c["queue"]),
                               distributed=True, **c["opts"])
    if loss.dim() == 0:
        loss.backward()
    else:  # NONE: a weighted sum, the weights fixed per line of the rank
        loss.backward(torch.linspace(0.5, 1.5, loss.numel(), device=device))
    cpu = {k: (None if v is None else v.detach().cpu())
           for k, v in dict(loss=loss, ga=a.grad, gb=None if b is None else b.grad,
                            gs=s.grad).items()}
    return cpu


def _offsets(parts):
    offs = [0]
    for x in parts[:-1]:
        offs.append(offs[-1] + x.shape[0])
    return offs


def _run_global(name, world):
    """The same global batch on one process, rank-local indices turned global."""
    c = _case(name, world)
    opts = dict(c["opts"])
    s = torch.tensor(c["scale"], requires_grad=True)
    if c["b"] is None and opts["loss"] == "nt_xent":
        return _global_nt_xent(c, s, opts)
    a = torch.cat(c["a"]).requires_grad_()
    b = None if c["b"] is None else torch.cat(c["b"]).requires_grad_()
    targets, labels = None, None
    if "labels_a" in c:
        la = torch.cat(c["labels_a"])
        labels = la if b is None else (la, torch.cat(c["labels_b"]))
    elif b is not None:
        # Rank-local diagonal / targets = global targets offset by the rank's first column.
        offs = _offsets(c["b"])
        local = c["targets"] or [torch.arange(x.shape[0]) for x in c["a"]]
        targets = torch.cat([torch.where(t >= 0, t + o, t) for t, o in zip(local, offs)])
        if opts["loss"] == "clip":  # symmetric targets as labels: row label = its column
            labels, targets = (targets, torch.arange(b.shape[0])), None
            opts["positives"] = "labels"
    loss = ft.contrastive_loss(a, b, s, targets=targets, labels=labels, queue=c["queue"], **opts)
    weights = _global_weights(c, loss)
    (loss * weights).sum().backward() if weights is not None else loss.backward()
    return dict(loss=loss.detach(), ga=a.grad, gb=None if b is None else b.grad, gs=s.grad)


def _global_nt_xent(c, s, opts):
    """Rank-local view pairs: the global batch is [every rank's first views; second views]."""
    halves = [(x[: x.shape[0] // 2].clone().requires_grad_(),
               x[x.shape[0] // 2:].clone().requires_grad_()) for x in c["a"]]
    z = torch.cat([f for f, _ in halves] + [t for _, t in halves])
    loss = ft.contrastive_loss(z, None, s, **opts)
    loss.backward()
    ga = torch.cat([torch.cat([f.grad, t.grad]) for f, t in halves])
    return dict(loss=loss.detach(), ga=ga, gb=None, gs=s.grad)


def _global_weights(c, loss):
    """NONE: the weights the ranks used, in the global line order (rows, then columns)."""
    if loss.dim() == 0:
        return None
    rows, cols = [x.shape[0] for x in c["a"]], [x.shape[0] for x in c["b"]]
    symmetric = c["opts"]["loss"] == "clip"
    per_rank = [torch.linspace(0.5, 1.5, n + (m if symmetric else 0)) for n, m in zip(rows, cols)]
    w_rows = torch.cat([w[:n] for w, n in zip(per_rank, rows)])
    if not symmetric:
        return w_rows
    return torch.cat([w_rows, torch.cat([w[n:] for w, n in zip(per_rank, rows)])])

# The python/README.md data-parallel example, verbatim (test_readme_ddp_example_*).
README_DDP = """\
import torch
from flashnce.torch import ClipLoss


class CLIP(torch.nn.Module):  # the loss inside the model: DDP averages logit_scale's gradient too
    def __init__(self, distributed: bool):
        super().__init__()
        self.image, self.text = torch.nn.Linear(64, 32), torch.nn.Linear(48, 32)  # the encoders
        self.loss = ClipLoss(init_temperature=0.07, distributed=distributed)

    def forward(self, images, texts):  # this rank's rows against every rank's columns
        return self.loss(self.image(images), self.text(texts))


# in each of the W processes, after torch.distributed.init_process_group("nccl" or "gloo"):
model = torch.nn.parallel.DistributedDataParallel(CLIP(distributed=True))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss = model(images, texts)  # this rank's batch; the mean over ranks is the global batch's loss
loss.backward()  # every parameter gets the gradient of the global batch's loss
opt.step()
"""
README_BATCH = 8  # rows per rank in the example's test


def _readme_batch(world):
    g = torch.Generator().manual_seed(3)
    return (torch.randn(README_BATCH * world, 64, generator=g),
            torch.randn(README_BATCH * world, 48, generator=g))


def _readme_rank(world, rank):
    x, y = _readme_batch(world)
    rows = slice(README_BATCH * rank, README_BATCH * (rank + 1))
    torch.manual_seed(0)  # the same initial model on every rank (DDP broadcasts rank 0's anyway)
    scope = dict(images=x[rows], texts=y[rows])
    # The gradients are recorded before opt.step() moves the parameters.
    record = "grads = [p.grad.clone() for p in model.parameters()]\nopt.step()"
    exec(compile(README_DDP.replace("opt.step()", record), "README", "exec"), scope)
    return dict(loss=scope["loss"].detach(), grads=scope["grads"])



def _module_calls(distributed):
    """Each module on an equal-shard batch (4 rows per rank): (name, module, inputs(x, y, lab, q))."""
    kw = dict(distributed=distributed)
    return [
        ("InfoNCELoss", ft.InfoNCELoss(0.3, **kw), lambda x, y, lab, q: (x, y)),
        ("ClipLoss", ft.ClipLoss(0.2, **kw), lambda x, y, lab, q: (x, y)),
        ("NTXentLoss", ft.NTXentLoss(0.5, **kw), lambda x, y, lab, q: (x, y)),
        ("DCLLoss", ft.DCLLoss(0.4, **kw), lambda x, y, lab, q: (x, y)),
        ("SupConLoss", ft.SupConLoss(0.3, **kw), lambda x, y, lab, q: (torch.stack([x, y], 1), lab)),
        ("VAEPriorLoss", ft.VAEPriorLoss(0.9, **kw), lambda x, y, lab, q: (x, y)),
        ("MoCoLoss", ft.MoCoLoss(0.2, **kw), lambda x, y, lab, q: (x, y, q)),
    ]


def _module_batch(world):
    g = torch.Generator().manual_seed(21)
    return (torch.randn(4 * world, D, generator=g), torch.randn(4 * world, D, generator=g),
            torch.randint(0, 3, (4 * world,), generator=g), torch.randn(QUEUE, D, generator=g))


def _modules_rank(world, rank):
    x, y, lab, q = _module_batch(world)
    rows = slice(4 * rank, 4 * rank + 4)
    out = {}
    for name, fn, args in _module_calls(True):
        xa = x[rows].clone().requires_grad_()
        loss = fn(*args(xa, y[rows], lab[rows], q))
        loss.backward()
        out[name] = (loss.detach(), xa.grad)
    return out


def _ddp_rank(world, rank):
    """A two-tower linear model under DDP with ClipLoss(distributed=True): parameter gradients."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4 * world, 6, generator=g)
    y = torch.randn(4 * world, 7, generator=g)
    model = _TwoTower()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    loss_fn = ft.ClipLoss(init_temperature=0.1, distributed=True)
    img, txt = ddp(x[4 * rank: 4 * rank + 4], y[4 * rank: 4 * rank + 4])
    loss = loss_fn(img, txt)
    loss.backward()
    dist.all_reduce(loss_fn.logit_scale.grad)  # the loss module is outside DDP: average by hand
    loss_fn.logit_scale.grad /= world
    return dict(loss=loss.detach(), grads=[p.grad.clone() for p in model.parameters()],
                gs=loss_fn.logit_scale.grad.clone())


class _TwoTower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.f, self.h = torch.nn.Linear(6, 5), torch.nn.Linear(7, 5)

    def forward(self, x, y):
        return self.f(x), self.h(y)


def _worker(rank, world, init_file, out_dir, backend):
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        device = "cpu"
        if backend == "nccl":
            torch.cuda.set_device(rank)
            device = f"cuda:{rank}"
        results = {name: _run_rank(name, world, rank, device) for name in CASES}
        if backend == "gloo":
            results["_ddp"] = _ddp_rank(world, rank)
            results["_errors"] = _error_cases(world, rank)
            results["_readme"] = _readme_rank(world, rank)
            results["_modules"] = _modules_rank(world, rank)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _error_cases(world, rank):
    """Bad input is refused the same way on every rank (no rank left waiting in a collective)."""
    msgs = []
    a = torch.randn(3 + rank, D)  # rank 1 has more rows than columns
    b = torch.randn(3, D)
    for call in (
        lambda: ft.contrastive_loss(a, b, 1.0, distributed=True),
        lambda: ft.contrastive_loss(torch.randn(3 + 2 * rank, D), None, 1.0, loss="nt_xent",
                                    distributed=True) if world > 1 else None,
    ):
        try:
            call()
            msgs.append(None)
        except ValueError as e:
            msgs.append(str(e))
    return msgs


_SPAWNED = {}


def _spawn(world, backend="gloo"):
    key = (world, backend)
    if key not in _SPAWNED:
        with tempfile.TemporaryDirectory() as tmp:
            init = os.path.join(tmp, "init")
            mp.spawn(_worker, args=(world, init, tmp, backend), nprocs=world, join=True)
            _SPAWNED[key] = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)]
    return _SPAWNED[key]


def _close(got, want, what):
    torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-6, msg=lambda m: f"{what}: {m}")


_NCCL = pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.device_count() >= 2 and dist.is_nccl_available()),
    reason="NCCL needs two or more GPUs",
)


@pytest.mark.parametrize("backend", ["gloo", pytest.param("nccl", marks=_NCCL)])
@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_distributed_matches_global_batch(backend, world, name):
    if backend == "nccl" and world > torch.cuda.device_count():
        pytest.skip(f"NCCL with {world} ranks needs {world} GPUs")
    ranks = [r[name] for r in _spawn(world, backend)]
    want = _run_global(name, world)
    if want["loss"].dim() == 0:
        _close(torch.stack([r["loss"] for r in ranks]).mean(), want["loss"], "mean loss")
        scale = world  # DDP averages the W ranks' gradients
    else:  # NONE: each rank's own lines, rows then columns
        c = _case(name, world)
        rows = [x.shape[0] for x in c["a"]]
        got_rows = torch.cat([r["loss"][:n] for r, n in zip(ranks, rows)])
        got = got_rows
        if want["loss"].numel() > got_rows.numel():
            got = torch.cat([got_rows, torch.cat([r["loss"][n:] for r, n in zip(ranks, rows)])])
        _close(got, want["loss"], "per-line losses")
        scale = 1  # no reduction: the ranks' gradients add up to the global ones
    _close(torch.cat([r["ga"] for r in ranks]) / scale, want["ga"], "grad a")
    if want["gb"] is not None:
        _close(torch.cat([r["gb"] for r in ranks]) / scale, want["gb"], "grad b")
    gs = torch.stack([r["gs"] for r in ranks]).sum() / scale
    _close(gs, want["gs"], "grad logit_scale")


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_clip_training_step_matches_one_process(world):
    ranks = [r["_ddp"] for r in _spawn(world)]
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(4 * world, 6, generator=g), torch.randn(4 * world, 7, generator=g)
    model, loss_fn = _TwoTower(), ft.ClipLoss(init_temperature=0.1)
    loss = loss_fn(*model(x, y))
    loss.backward()
    _close(torch.stack([r["loss"] for r in ranks]).mean(), loss.detach(), "loss")
    for r in ranks:  # DDP leaves every rank with the same averaged gradients
        for got, p in zip(r["grads"], model.parameters()):
            _close(got, p.grad, "parameter gradient")
        _close(r["gs"], loss_fn.logit_scale.grad, "logit_scale gradient")
    assert math.isfinite(loss.item())


@pytest.mark.parametrize("world", [2, 3])
def test_every_module_distributed_matches_one_process(world):
    ranks = [r["_modules"] for r in _spawn(world)]
    x, y, lab, q = _module_batch(world)
    for name, fn, args in _module_calls(False):
        xa = x.clone().requires_grad_()
        if name == "SupConLoss":  # rank-major stacking: the same anchors in another order
            per = [torch.stack([xa[4 * r: 4 * r + 4], y[4 * r: 4 * r + 4]], 1) for r in range(world)]
            loss = fn(torch.cat([torch.cat(torch.unbind(p, 1)) for p in per]),
                      torch.cat([lab[4 * r: 4 * r + 4].repeat(2) for r in range(world)]))
        elif name in ("NTXentLoss", "DCLLoss"):  # view pairs as [all x; all y]
            loss = fn(xa, y)
        else:
            loss = fn(*args(xa, y, lab, q))
        loss.backward()
        _close(torch.stack([r[name][0] for r in ranks]).mean(), loss.detach(), f"{name} loss")
        _close(torch.cat([r[name][1] for r in ranks]) / world, xa.grad, f"{name} grad")


def test_bad_shards_fail_on_every_rank():
    msgs = [r["_errors"] for r in _spawn(2)]
    for m in msgs:
        assert m[0] is not None and "n <= m on every rank" in m[0] and "[3, 4]" in m[0]
        assert m[1] is not None and "even row count" in m[1]


def test_distributed_needs_an_initialised_group():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        ft.contrastive_loss(torch.randn(2, 3), torch.randn(2, 3), 1.0, distributed=True)


def test_readme_ddp_example_is_in_the_readme_verbatim():
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "```python\n" + README_DDP + "```" in text


@pytest.mark.parametrize("world", [2, 3])
def test_readme_ddp_example_matches_one_process(world):
    ranks = [r["_readme"] for r in _spawn(world)]
    scope = {}
    exec(compile(README_DDP.split("# in each of the W")[0], "README", "exec"), scope)
    torch.manual_seed(0)
    model = scope["CLIP"](distributed=False)
    loss = model(*_readme_batch(world))
    loss.backward()
    _close(torch.stack([r["loss"] for r in ranks]).mean(), loss.detach(), "loss")
    for r in ranks:
        for got, p in zip(r["grads"], model.parameters()):
            _close(got, p.grad, "parameter gradient")
