"""flashnce.forward / flashnce.backward on NumPy arrays (CPU reference backend) against the
float64 NumPy formulation in reference_numpy.py (values, LSEs, finite-difference gradients)."""

import math

import numpy as np
import pytest

import flashnce
import reference_numpy as ref

RTOL, ATOL = 2e-5, 2e-6  # f32 outputs of an f64 computation
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5  # f32 outputs vs f64 central differences


def rand(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


# (name, self_mode, n, m, kwargs for flashnce, kwargs for the formula)
def _cases():
    targets = np.array([2, -1, 0, 4, 4], np.int64)  # a duplicate target and an ignored row
    la = np.array(
        [0, 1, 0, 2, 3], np.int64
    )  # label 3 has no match among b's: a row without positives
    lb = np.array([1, 0, 2, 0, 1, 1], np.int64)
    ls = np.array([0, 1, 0, 1, 2, 0], np.int64)  # self mode: label 2 appears once
    yield "diagonal", False, 5, 6, dict(), dict(positives="diagonal")
    yield "targets", False, 5, 6, dict(targets=targets), dict(positives="targets", targets=targets)
    yield (
        "labels",
        False,
        5,
        6,
        dict(labels=(la, lb)),
        dict(positives="labels", labels_a=la, labels_b=lb),
    )
    yield (
        "labels_exclude_self",
        False,
        5,
        5,
        dict(exclude_self=True, positives="labels", labels=(la, la)),
        dict(positives="labels", labels_a=la, labels_b=la, exclude_self=True),
    )
    yield "self_view_pairs", True, 6, 6, dict(positives="view_pairs"), dict(positives="view_pairs")
    yield "self_labels", True, 6, 6, dict(labels=ls), dict(positives="labels", labels_a=ls)


CASES = list(_cases())
SIMS = ["dot", "cosine", "neg_sq_dist"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("direction", ["rows", "symmetric"])
@pytest.mark.parametrize("normalizer", ["all", "negatives"])
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_forward_backward_match_formula(case, sim, normalizer, direction, reduction):
    name, self_mode, n, m, api_kw, ref_kw = case
    rng = np.random.default_rng(abs(hash((name, sim, normalizer, direction, reduction))) % 2**32)
    a = rand(rng, n, 3)
    b = None if self_mode else rand(rng, m, 3)
    scale = 1.7 if sim != "neg_sq_dist" else 0.6
    opts = dict(similarity=sim, normalizer=normalizer, direction=direction, reduction=reduction)

    loss, row_lse, col_lse = flashnce.forward(a, b, np.float32(scale), **opts, **api_kw)
    want, want_r, want_c = ref.loss(
        a,
        b,
        scale,
        similarity_kind=sim,
        normalizer=normalizer,
        direction=direction,
        reduction=reduction,
        **ref_kw,
    )
    assert loss.dtype == np.float32 and row_lse.dtype == np.float32
    assert loss.shape == (() if reduction != "none" else np.shape(want))
    np.testing.assert_allclose(loss, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(row_lse, want_r, rtol=RTOL, atol=ATOL)
    if direction == "symmetric":
        np.testing.assert_allclose(col_lse, want_c, rtol=RTOL, atol=ATOL)
    else:
        assert col_lse is None

    g = rng.uniform(0.5, 1.5, size=np.shape(want)).astype(np.float32)
    gl = g if reduction == "none" else np.array([g], np.float32).reshape(())
    ga, gb, gs = flashnce.backward(
        a, b, np.array([scale], np.float32), row_lse, col_lse, gl, **opts, **api_kw
    )
    fa, fb, fs = ref.finite_difference_grads(
        a,
        b,
        scale,
        gl,
        similarity_kind=sim,
        normalizer=normalizer,
        direction=direction,
        reduction=reduction,
        **ref_kw,
    )
    assert ga.dtype == np.float32 and ga.shape == a.shape
    np.testing.assert_allclose(ga, fa, rtol=GRAD_RTOL, atol=GRAD_ATOL)
    if self_mode:
        assert gb is None
    else:
        np.testing.assert_allclose(gb, fb, rtol=GRAD_RTOL, atol=GRAD_ATOL)
    assert gs.shape == (1,)
    np.testing.assert_allclose(gs[0], fs, rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.parametrize("loss_name", ["infonce", "clip", "nt_xent", "supcon", "vae_prior", "moco"])
def test_presets_match_formula(loss_name):
    rng = np.random.default_rng(7)
    a = rand(rng, 8, 5)
    b = rand(rng, 10, 5)
    labels = np.array([0, 1, 2, 0, 1, 2, 3, 3], np.int64)
    kw = {}
    expected = dict(flashnce.PRESETS[loss_name])
    if loss_name in ("nt_xent", "supcon"):
        b = None
        if loss_name == "supcon":
            kw["labels"] = labels
    got, _, _ = flashnce.forward(a, b, 2.0, loss=loss_name, **kw)
    want, _, _ = ref.loss(
        a,
        b,
        2.0,
        similarity_kind=expected["similarity"],
        positives=expected["positives"],
        normalizer=expected["normalizer"],
        direction=expected["direction"],
        labels_a=kw.get("labels"),
    )
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_preset_choices_are_the_documented_ones():
    # The named losses must mean what the C++ presets (include/flashnce/flashnce.hpp) mean.
    p = flashnce.PRESETS
    assert p["infonce"]["similarity"] == "dot" and p["infonce"]["direction"] == "rows"
    assert p["clip"]["similarity"] == "cosine" and p["clip"]["direction"] == "symmetric"
    assert p["nt_xent"]["positives"] == "view_pairs" and p["nt_xent"]["similarity"] == "cosine"
    assert p["supcon"]["positives"] == "labels"
    assert p["vae_prior"]["normalizer"] == "negatives"
    assert p["vae_prior"]["similarity"] == "neg_sq_dist"


def test_infonce_equals_cross_entropy_by_hand():
    # Hand-worked: 2x2 logits, scale 1, one-hot rows: loss = mean_i log(sum_j e^{s_ij}) - s_ii.
    a = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    b = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # s = [[1, 0], [0, 2]]
    want = 0.5 * ((math.log(math.e + 1) - 1) + (math.log(1 + math.e**2) - 2))
    loss, row_lse, _ = flashnce.forward(a, b, 1.0)
    assert float(loss) == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(row_lse, [math.log(math.e + 1), math.log(1 + math.e**2)], rtol=1e-6)


def test_strided_and_transposed_inputs():
    rng = np.random.default_rng(3)
    big_a = rand(rng, 14, 9)
    big_b = rand(rng, 9, 12)
    a = big_a[::2, 1:5]  # row stride 18 elements, last axis contiguous: passed in place (lda)
    b = big_b.T[:, :4]  # last axis not contiguous: copied
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    got = flashnce.forward(a, b, 1.3, loss="clip")
    want = flashnce.forward(np.ascontiguousarray(a), np.ascontiguousarray(b), 1.3, loss="clip")
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    ga, gb, _ = flashnce.backward(a, b, 1.3, got[1], got[2], loss="clip")
    wa, wb, _ = flashnce.backward(
        np.ascontiguousarray(a), np.ascontiguousarray(b), 1.3, want[1], want[2], loss="clip"
    )
    np.testing.assert_array_equal(ga, wa)
    np.testing.assert_array_equal(gb, wb)
    assert ga.flags.c_contiguous and ga.shape == a.shape


def test_float16_inputs():
    rng = np.random.default_rng(5)
    a = rand(rng, 7, 6).astype(np.float16)
    b = rand(rng, 9, 6).astype(np.float16)
    loss, row_lse, _ = flashnce.forward(a, b, 2.0)
    # The reference sees the f16 values exactly (widened), so only output rounding differs.
    want, want_r, _ = ref.loss(a.astype(np.float64), b.astype(np.float64), 2.0)
    np.testing.assert_allclose(loss, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(row_lse, want_r, rtol=RTOL, atol=ATOL)
    ga, gb, _ = flashnce.backward(a, b, 2.0, row_lse)
    assert ga.dtype == np.float16 and gb.dtype == np.float16
    fa, fb, _ = ref.finite_difference_grads(a, b, 2.0, 1.0)
    np.testing.assert_allclose(ga.astype(np.float64), fa, rtol=2e-3, atol=2e-4)  # f16 rounding
    np.testing.assert_allclose(gb.astype(np.float64), fb, rtol=2e-3, atol=2e-4)


def test_large_scale_is_stable():
    rng = np.random.default_rng(11)
    a = rand(rng, 6, 4, scale=3.0)
    b = rand(rng, 6, 4, scale=3.0)
    loss, row_lse, _ = flashnce.forward(a, b, 100.0)
    want, want_r, _ = ref.loss(a, b, 100.0)
    assert np.isfinite(loss) and np.all(np.isfinite(row_lse))
    np.testing.assert_allclose(loss, want, rtol=RTOL, atol=1e-4)
    np.testing.assert_allclose(row_lse, want_r, rtol=RTOL)


def test_no_valid_row_gives_zero_loss_and_zero_grads():
    rng = np.random.default_rng(2)
    a, b = rand(rng, 4, 3), rand(rng, 5, 3)
    t = np.full(4, -1, np.int64)
    loss, row_lse, _ = flashnce.forward(a, b, 1.0, targets=t)
    assert float(loss) == 0.0
    ga, gb, gs = flashnce.backward(a, b, 1.0, row_lse, targets=t)
    assert not ga.any() and not gb.any() and float(gs[0]) == 0.0


def test_empty_normalizer_row_has_minus_inf_lse():
    # Self mode, n = 2, NEGATIVES: Z(i) = all j minus self minus the positive = empty.
    a = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    loss, row_lse, _ = flashnce.forward(
        a, None, 1.0, positives="view_pairs", normalizer="negatives", reduction="none"
    )
    assert np.all(np.isneginf(row_lse))
    np.testing.assert_array_equal(loss, [0.0, 0.0])


def test_target_out_of_range_gives_nan_row():
    rng = np.random.default_rng(4)
    a, b = rand(rng, 3, 2), rand(rng, 4, 2)
    t = np.array([0, 9, 1], np.int64)
    per_row, _, _ = flashnce.forward(a, b, 1.0, targets=t, reduction="none")
    assert np.isnan(per_row[1]) and np.isfinite(per_row[0]) and np.isfinite(per_row[2])
    mean, _, _ = flashnce.forward(a, b, 1.0, targets=t)
    assert np.isnan(mean)


def test_non_finite_scale_gives_nan():
    rng = np.random.default_rng(6)
    a, b = rand(rng, 3, 2), rand(rng, 3, 2)
    loss, _, _ = flashnce.forward(a, b, np.array([np.nan], np.float32))
    assert np.isnan(loss)


def test_int32_targets_are_widened():
    rng = np.random.default_rng(8)
    a, b = rand(rng, 3, 2), rand(rng, 4, 2)
    t64 = np.array([3, 0, 2], np.int64)
    got, _, _ = flashnce.forward(a, b, 1.0, targets=t64.astype(np.int32))
    want, _, _ = flashnce.forward(a, b, 1.0, targets=t64)
    assert float(got) == float(want)


# ---- errors: caught before the call (types, shapes) or reported by the library -------------


def test_float64_input_is_rejected():
    a = np.zeros((3, 2))
    with pytest.raises(TypeError, match="float32, float16 or bfloat16, got float64"):
        flashnce.forward(a, a, 1.0)


def test_dtype_mismatch_is_rejected():
    a = np.zeros((3, 2), np.float32)
    with pytest.raises(TypeError, match="b has dtype float16 but a has float32"):
        flashnce.forward(a, a.astype(np.float16), 1.0)


def test_shape_errors():
    a = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="d must match"):
        flashnce.forward(a, np.zeros((3, 4), np.float32), 1.0)
    with pytest.raises(ValueError, match="must be 2-D"):
        flashnce.forward(np.zeros(3, np.float32), a, 1.0)
    with pytest.raises(ValueError, match="logit_scale must hold one value"):
        flashnce.forward(a, a, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="targets must have 3 entries"):
        flashnce.forward(a, a, 1.0, targets=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="labels must be a pair"):
        flashnce.forward(a, a, 1.0, labels=np.zeros(3, np.int64))


def test_bad_option_names():
    a = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="loss must be one of"):
        flashnce.forward(a, a, 1.0, loss="triplet")
    with pytest.raises(ValueError, match="similarity must be one of"):
        flashnce.forward(a, a, 1.0, similarity="l1")


def test_library_errors_carry_its_message():
    a = np.zeros((4, 2), np.float32)
    with pytest.raises(flashnce.InvalidValueError, match="VIEW_PAIRS") as e:
        flashnce.forward(a, None, 1.0, positives="diagonal")
    assert e.value.status == "ERROR_INVALID_VALUE"
    assert isinstance(e.value, ValueError)
    with pytest.raises(flashnce.InvalidValueError, match="n <= m"):
        flashnce.forward(np.zeros((5, 2), np.float32), np.zeros((4, 2), np.float32), 1.0)


def test_backward_needs_col_lse_when_symmetric():
    a = np.ones((3, 2), np.float32)
    _, row_lse, _ = flashnce.forward(a, a, 1.0, loss="clip")
    with pytest.raises(ValueError, match="col_lse"):
        flashnce.backward(a, a, 1.0, row_lse, None, loss="clip")


def test_backward_need_flags():
    rng = np.random.default_rng(9)
    a, b = rand(rng, 3, 2), rand(rng, 4, 2)
    _, row_lse, _ = flashnce.forward(a, b, 1.0)
    ga, gb, gs = flashnce.backward(
        a, b, 1.0, row_lse, need_grad_a=False, need_grad_logit_scale=False
    )
    assert ga is None and gs is None and gb.shape == b.shape
    full = flashnce.backward(a, b, 1.0, row_lse)
    np.testing.assert_array_equal(gb, full[1])


def test_backends():
    assert flashnce.backend_is_available("cpu")
    assert "CPU" in flashnce.device_name("cpu")
    assert isinstance(flashnce.backend_is_available("cuda"), bool)


def test_generic_dlpack_object_on_cpu():
    # A host array that is not an ndarray but exports DLPack (here: a memoryview-free wrapper).
    class Wrapped:
        def __init__(self, x):
            self.x = x

        def __dlpack__(self, *args, **kw):
            return self.x.__dlpack__(*args, **kw)

        def __dlpack_device__(self):
            return self.x.__dlpack_device__()

    rng = np.random.default_rng(10)
    a, b = rand(rng, 4, 3), rand(rng, 5, 3)
    got = flashnce.forward(Wrapped(a), Wrapped(b), 1.5, loss="clip")
    want = flashnce.forward(a, b, 1.5, loss="clip")
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), w)


def test_enum_options_are_accepted():
    # Options may be given as the binding's enums, including value-0 members (DOT, ALL, ROWS).
    C = flashnce._C
    a = np.array([[1.0, 2.0], [0.5, -1.0]], np.float32)
    by_enum = flashnce.make_config(
        "clip",
        similarity=C.Similarity.DOT,
        normalizer=C.Normalizer.ALL,
        direction=C.Direction.ROWS,
    )
    assert by_enum == flashnce.make_config("infonce")
    got, _, _ = flashnce.forward(
        a, a, 1.0, loss="clip", similarity=C.Similarity.DOT, direction=C.Direction.ROWS
    )
    want, _, _ = flashnce.forward(a, a, 1.0)
    assert float(got) == float(want)


def test_bfloat16_numpy_arrays_through_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(12)
    a = rand(rng, 5, 4).astype(ml_dtypes.bfloat16)
    b = rand(rng, 6, 4).astype(ml_dtypes.bfloat16)
    loss, row_lse, _ = flashnce.forward(a, b, 2.0)
    want, want_r, _ = ref.loss(a.astype(np.float64), b.astype(np.float64), 2.0)
    np.testing.assert_allclose(loss, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(row_lse, want_r, rtol=RTOL, atol=ATOL)
    ga, gb, _ = flashnce.backward(a, b, 2.0, row_lse)
    assert ga.dtype == a.dtype and gb.shape == b.shape
    fa, _, _ = ref.finite_difference_grads(a, b, 2.0, 1.0)
    np.testing.assert_allclose(ga.astype(np.float64), fa, rtol=1e-2, atol=1e-3)  # bf16 rounding
