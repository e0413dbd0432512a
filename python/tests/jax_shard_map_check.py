"""flashnce.jax's axis_name mode under jax.shard_map on W CPU devices against one device holding
the global batch.  Run by test_jax.py::test_shard_map_matches_global_batch in a subprocess (the
device count must be set before JAX starts): python3 jax_shard_map_check.py W.  Prints one line
per case and exits non-zero on the first mismatch."""

import os
import sys

W = int(sys.argv[1]) if len(sys.argv) > 1 else 2
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={W}"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, PartitionSpec as P  # noqa: E402

try:
    from jax import shard_map  # noqa: E402
except ImportError:  # JAX < 0.7
    from jax.experimental.shard_map import shard_map  # noqa: E402

import flashnce.jax as fj  # noqa: E402

N, M, D = 4, 5, 6  # rows and columns per device
CASES = {
    "infonce": (dict(loss="infonce"), True, None),
    "infonce_targets": (dict(loss="infonce"), True, "targets"),
    "infonce_labels_negatives": (dict(loss="infonce", normalizer="negatives"), True, "labels"),
    "clip": (dict(loss="clip"), True, None),
    "clip_labels_sum": (dict(loss="clip", positives="labels", reduction="sum"), True, "labels"),
    "nt_xent": (dict(loss="nt_xent"), False, None),
    "supcon": (dict(loss="supcon"), False, "labels"),
    "vae_prior": (dict(loss="vae_prior"), True, None),
}


def data(name):
    rng = np.random.default_rng(sum(map(ord, name)) + W)
    opts, cross, extra = CASES[name]
    m = M if opts["loss"] != "clip" or extra == "labels" else N  # CLIP's diagonal: n = m
    a = rng.standard_normal((W * N, D)).astype(np.float32)
    b = rng.standard_normal((W * m, D)).astype(np.float32) if cross else None
    t = rng.integers(-1, m, (W * N,)).astype(np.int32) if extra == "targets" else None
    la = rng.integers(0, 3, (W * N,)).astype(np.int32) if extra == "labels" else None
    if la is not None:
        la[::N] = 50 + np.arange(W)  # one row per shard without positives
    lb = rng.integers(0, 3, (W * m,)).astype(np.int32) if extra == "labels" and cross else None
    return opts, a, b, t, la, lb, m


def global_loss(name):
    opts, a, b, t, la, lb, m = data(name)
    opts = dict(opts)
    labels = None if la is None else (la if b is None else (la, lb))
    if b is not None and la is None:  # shard-local diagonal / targets = global targets
        local = t if t is not None else np.tile(np.arange(N), W)
        offs = np.repeat(np.arange(W) * m, N)
        gt = np.where(local >= 0, local + offs, local).astype(np.int32)
        if opts["loss"] == "clip":  # symmetric: as labels (row label = its column)
            labels, gt = (gt, np.arange(W * m, dtype=np.int32)), None
            opts["positives"] = "labels"
        t = gt
    if b is None and opts["loss"] == "nt_xent":  # shard-local view pairs: [first views; seconds]
        shards = a.reshape(W, N, D)
        perm = np.concatenate([shards[:, : N // 2].reshape(-1, D), shards[:, N // 2:].reshape(-1, D)])

        def f(z, s):
            return fj.contrastive_loss(z, None, s, **opts)

        val, (gz, gs) = jax.value_and_grad(f, argnums=(0, 1))(jnp.asarray(perm), 2.0)
        gz = np.asarray(gz)
        half = W * N // 2
        ga = np.concatenate([np.concatenate([gz[r * (N // 2):(r + 1) * (N // 2)],
                                             gz[half + r * (N // 2):half + (r + 1) * (N // 2)]])
                             for r in range(W)])
        return val, ga, None, gs

    def f(a, b, s):
        return fj.contrastive_loss(a, b, s, targets=t, labels=labels, **opts)

    if b is None:
        val, (ga, gs) = jax.value_and_grad(lambda a, s: f(a, None, s), argnums=(0, 1))(a, 2.0)
        return val, ga, None, gs
    val, (ga, gb, gs) = jax.value_and_grad(f, argnums=(0, 1, 2))(a, b, 2.0)
    return val, ga, gb, gs


def sharded_loss(name):
    opts, a, b, t, la, lb, m = data(name)
    mesh = Mesh(np.array(jax.devices()[:W]), ("d",))

    def local(a, b, s, t, la, lb):
        labels = None if la is None else (la if b is None else (la, lb))
        share = fj.contrastive_loss(a, b, s, targets=t, labels=labels, axis_name="d", **opts)
        return share

    def step(a, b, s, t, la, lb):
        argnums = (0, 2) if b is None else (0, 1, 2)
        share, grads = jax.value_and_grad(local, argnums=argnums)(a, b, s, t, la, lb)
        return jax.lax.psum(share, "d"), grads

    spec = lambda x: None if x is None else P("d")  # noqa: E731
    gspec = (P("d"), P()) if b is None else (P("d"), P("d"), P())
    f = shard_map(step, mesh=mesh,
                  in_specs=(P("d"), spec(b), P(), spec(t), spec(la), spec(lb)),
                  out_specs=(P(), gspec))
    val, grads = jax.jit(f)(a, b, jnp.float32(2.0), t, la, lb)
    if b is None:
        return val, grads[0], None, grads[1]
    return val, grads[0], grads[1], grads[2]


def close(got, want, what):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=2e-6,
                               err_msg=what)


def main():
    for name in CASES:
        want = global_loss(name)
        got = sharded_loss(name)
        close(got[0], want[0], f"{name}: psum of the shares vs the global loss")
        close(got[1], want[1], f"{name}: grad a")
        if want[2] is not None:
            close(got[2], want[2], f"{name}: grad b")
        close(got[3], want[3], f"{name}: grad logit_scale")
        print(f"{name}: ok (W = {W}, loss {float(want[0]):.6f})")


if __name__ == "__main__":
    main()
