#!/usr/bin/env python3
"""Writes the atheris target's corpora (tests/fuzz/python_api_fuzz.py's byte layout):

  corpus/python_seed/        valid calls, each expected to return "ok": every preset x float32 /
                             float16 / bfloat16 x reduction mean / none (forward, then backward on
                             its LSEs), targets, labels pairs, each input layout, make_config and
                             backward with made-up LSEs.
  corpus/python_regression/  one input per known finding (KNOWN in python_api_fuzz.py); the
                             replay test (python/tests/test_fuzz_replay.py) expects them to fail
                             until the bug is fixed.

    python3 tests/fuzz/make_python_seeds.py      # rewrites both directories
"""

import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import python_api_fuzz as h  # noqa: E402

PRESETS = ["infonce", "clip", "nt_xent", "supcon", "vae_prior", "moco"]


def at_least(lo: int, modulus: int, index: int) -> int:
    """The smallest byte >= lo that is `index` modulo `modulus`."""
    v = lo + (index - lo) % modulus
    assert v < 256 and v % modulus == index
    return v


def header(**kw) -> list:
    hd = [0] * h.HEADER
    for k, v in kw.items():
        hd[int(k[1:])] = v
    return hd


def data_bytes(rng, count: int) -> bytes:
    return bytes(rng.randrange(8, 256) for _ in range(count))  # finite element values only


def seeds():
    rng = random.Random(16)
    out = {}
    for li, loss in enumerate(PRESETS):
        self_mode = loss in ("nt_xent", "supcon")
        n, m, d = (4, 4, 3) if loss != "moco" else (3, 5, 4)
        for di, dname in enumerate(("f32", "f16", "bf16")):
            for red, rbyte in (("mean", 0), ("none", 67)):
                hd = header(h0=0, h1=li, h2=di, h4=n - 1, h5=m - 1, h6=d - 1,
                            h10=int(self_mode), h12=2,
                            h17=rbyte, h22=10 if red == "none" else 0)
                if loss == "supcon":
                    hd[20] = 168  # one int64 label array (self mode)
                out[f"{loss}_{dname}_{red}"] = bytes(hd) + data_bytes(rng, 200)
    # targets (int64, in range) and labels pairs on infonce
    out["infonce_targets"] = bytes(header(h4=3, h5=5, h6=2, h12=1,
                                          h19=at_least(160, len(h.INT_KINDS), 0))) + bytes(
        [rng.randrange(8, 256) for _ in range(42)] + [1, 4, 0, 3]) + data_bytes(rng, 40)
    out["infonce_labels_pair"] = bytes(header(h4=3, h5=4, h6=2, h20=169)) + data_bytes(rng, 80)
    # every layout of a and b (f32 infonce, forward then backward)
    for k, lay in enumerate(h.LAYOUTS):
        lb = at_least(96, len(h.LAYOUTS), k)
        out[f"layout_{lay}"] = bytes(header(h4=3, h5=3, h6=2, h7=lb, h8=lb)) + data_bytes(rng, 60)
    # the scale as a one-element float32 array; gradients partly asked for
    out["scale_array"] = bytes(header(h4=2, h5=2, h6=1, h11=at_least(64, 20, 2), h12=3)) + \
        data_bytes(rng, 40)
    out["need_grad_a_only"] = bytes(header(h4=2, h5=2, h6=1, h23=at_least(160, 8, 1))) + \
        data_bytes(rng, 40)
    out["make_config"] = bytes(header(h0=3, h1=1, h17=66))
    out["backward_made_up_lse"] = bytes(header(h0=2, h4=2, h5=2, h6=1)) + data_bytes(rng, 60)
    return out


def regressions():
    rng = random.Random(17)
    zero = h.ALL_DTYPES.index(h._ZERO_ITEMSIZE)
    be = h.ALL_DTYPES.index(h.np.dtype(">f4"))
    n_dt = len(h.ALL_DTYPES)
    return {
        # flashnce.forward(np.zeros((3, 2), np.dtype([])), b, 1.0): ZeroDivisionError
        "known_zero_itemsize_dtype": bytes(header(h0=1, h2=at_least(200, n_dt, zero), h4=3,
                                                  h5=3, h6=2)),
        # flashnce.forward(a, b, 10**400): OverflowError
        "known_huge_int_scale": bytes(header(h0=1, h4=2, h5=2, h6=1,
                                             h11=at_least(64, len(h.SCALE_KINDS), 16))),
        # flashnce.forward(a.astype('>f4'), b.astype('>f4'), 10.0): wrong values
        # flashnce.forward(a, b, 1.0, targets=np.array([..., 2**63], np.uint64), reduction=
        # "none"): the row with target 2**63 (>= m) gets loss 0 (ignored) instead of NaN
        "known_uint64_targets_wrap": bytes(header(
            h0=1, h4=2, h5=2, h6=1, h17=67,
            h19=at_least(160, len(h.INT_KINDS), h.INT_KINDS.index("uint64")))) +
        data_bytes(rng, 12) + bytes([1, 2, 255]),
        "known_non_native_byte_order": bytes(header(h0=1, h2=at_least(200, n_dt, be), h4=3,
                                                    h5=3, h6=2, h12=2)) + data_bytes(rng, 40),
    }


def write(dirname, files):
    path = os.path.join(HERE, "corpus", dirname)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        os.remove(os.path.join(path, old))
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as fh:
            fh.write(data)
    print(f"{len(files)} files in {path}")


if __name__ == "__main__":
    write("python_seed", seeds())
    write("python_regression", regressions())
