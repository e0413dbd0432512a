"""flashnce.jax (jax.custom_vjp over the CPU reference backend) against the float64 NumPy
formulation: values under jit, gradients (a, b, logit_scale) against finite differences."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import flashnce.jax as fj  # noqa: E402
import reference_numpy as ref  # noqa: E402

RTOL, ATOL = 2e-5, 2e-6
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5


@pytest.mark.parametrize(
    "loss,self_mode,ref_kw",
    [
        ("infonce", False, dict(similarity_kind="dot")),
        ("clip", False, dict(similarity_kind="cosine", direction="symmetric")),
        ("vae_prior", False, dict(similarity_kind="neg_sq_dist", normalizer="negatives")),
        ("nt_xent", True, dict(similarity_kind="cosine", positives="view_pairs")),
    ],
)
def test_value_and_grad_match_formula(loss, self_mode, ref_kw):
    rng = np.random.default_rng(21)
    a = rng.standard_normal((6, 3)).astype(np.float32)
    b = None if self_mode else rng.standard_normal((7, 3)).astype(np.float32)
    scale = 1.4

    if self_mode:
        f = jax.jit(lambda a_, s_: fj.contrastive_loss(a_, None, s_, loss=loss))
        value, (ga, gs) = jax.value_and_grad(f, argnums=(0, 1))(jnp.asarray(a), jnp.float32(scale))
        gb = None
    else:
        f = jax.jit(lambda a_, b_, s_: fj.contrastive_loss(a_, b_, s_, loss=loss))
        value, (ga, gb, gs) = jax.value_and_grad(f, argnums=(0, 1, 2))(
            jnp.asarray(a), jnp.asarray(b), jnp.float32(scale)
        )
    want, _, _ = ref.loss(a, b, scale, **ref_kw)
    np.testing.assert_allclose(np.asarray(value), want, rtol=RTOL, atol=ATOL)
    fa, fb, fs = ref.finite_difference_grads(a, b, scale, 1.0, **ref_kw)
    np.testing.assert_allclose(np.asarray(ga), fa, rtol=GRAD_RTOL, atol=GRAD_ATOL)
    if gb is not None:
        np.testing.assert_allclose(np.asarray(gb), fb, rtol=GRAD_RTOL, atol=GRAD_ATOL)
    np.testing.assert_allclose(float(gs), fs, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_labels_and_targets_and_reduction_none():
    rng = np.random.default_rng(22)
    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((6, 4)).astype(np.float32)
    t = np.array([1, -1, 5, 0, 2])
    got = fj.contrastive_loss(a, b, 2.0, targets=t, reduction="none")
    want, _, _ = ref.loss(a, b, 2.0, positives="targets", targets=t, reduction="none")
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)
    labels = np.array([0, 1, 0, 1, 2, 2])
    got = fj.contrastive_loss(np.vstack([a, a[:1]]), None, 2.0, loss="supcon", labels=labels)
    want, _, _ = ref.loss(
        np.vstack([a, a[:1]]),
        None,
        2.0,
        similarity_kind="cosine",
        positives="labels",
        labels_a=labels,
    )
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)


def test_errors():
    a = jnp.zeros((3, 2))
    with pytest.raises(TypeError, match="must match"):
        fj.contrastive_loss(a, a.astype(jnp.float16), 1.0)
    with pytest.raises(TypeError, match="targets must be integers"):
        fj.contrastive_loss(a, a, 1.0, targets=jnp.zeros(3))


def test_functional_core_takes_jax_arrays_through_dlpack():
    import flashnce

    rng = np.random.default_rng(23)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((5, 3)).astype(np.float32)
    got = flashnce.forward(jnp.asarray(a), jnp.asarray(b), 1.5, loss="clip", similarity="dot")
    want = flashnce.forward(a, b, 1.5, loss="clip", similarity="dot")
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), w)


@pytest.mark.parametrize("world", [2, 3])
def test_shard_map_matches_global_batch(world):
    """axis_name under jax.shard_map on `world` CPU devices against one device with the global
    batch (jax_shard_map_check.py; a subprocess, as the device count is fixed when JAX starts)."""
    import os
    import pathlib
    import subprocess
    import sys

    here = pathlib.Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])  # the same flashnce
    run = subprocess.run(
        [sys.executable, str(here / "jax_shard_map_check.py"), str(world)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(": ok") == 8, run.stdout
