#!/usr/bin/env python3
"""atheris target over the Python API (issue #16): flashnce.forward, flashnce.backward (after a
forward on the same inputs, or with made-up LSEs) and flashnce.make_config, on NumPy arrays (the
CPU reference backend).

    python3 tests/fuzz/python_api_fuzz.py -max_total_time=120 -print_final_stats=1 \
        build/py_fuzz_corpus tests/fuzz/corpus/python_seed
    python3 tests/fuzz/python_api_fuzz.py --replay DIR_OR_FILE...   # without atheris

The bytes are decoded by this file's own `Reader` (not atheris.FuzzedDataProvider), so that the
corpora replay bit-for-bit without atheris (python/tests/test_fuzz_replay.py runs `run_one` over
tests/fuzz/corpus/python_seed and python_regression).  Layout: a fixed header of HEADER bytes,
one per structural choice (function, loss, dtypes, n / m / d, layouts, scale, every keyword), then
element bytes (a, b, targets, labels, LSEs, grad_loss; past the end every byte reads 0).

What may escape a call (the exceptions python/README.md documents for the NumPy path):
  TypeError, ValueError (flashnce.InvalidValueError is one) and flashnce.NotSupportedError.
Anything else escaping (ZeroDivisionError, OverflowError, AttributeError, IndexError, another
FlashNCEError such as InternalError / WorkspaceTooSmallError / CudaError on the CPU backend,
MemoryError on these tiny inputs), a crash, or a contract violation below is a finding.

The contract checked on every call that returns (ContractViolation otherwise):
  - no input array is modified (a, b, logit_scale, targets, labels, row_lse, col_lse, grad_loss);
  - forward: (loss, row_lse, col_lse) are float32 ndarrays; loss is 0-d, or (n,) / (n + m,) for
    reduction "none" (n + m when the resolved direction is symmetric); row_lse is (n,); col_lse
    is (m,) when symmetric, else None; the resolved config is what flashnce.make_config gives;
  - backward: grad_a is (n, d) with a's dtype, present iff need_grad_a (or, in self mode,
    need_grad_b); grad_b is (m, d) iff need_grad_b and b is given, else None; grad_logit_scale is
    float32 with logit_scale's shape ((1,) for a Python/NumPy scalar) iff need_grad_logit_scale;
  - finite inputs (every element of a and b finite), a finite scale with |scale| <= 100 and, when
    the positives are "targets", integer targets all < m: the loss is finite and row_lse / col_lse
    hold no NaN or +inf (-inf is an empty normaliser); backward after that forward, with its own
    LSEs and a finite grad_loss: grad_logit_scale finite (for f16 / bf16 only when
    |scale| <= 10), grad_a / grad_b finite for float32 (the C target's rule);
  - layout invariance: when any input was non-canonical (strided, transposed, reversed,
    broadcast, Fortran-order, unaligned, read-only, non-native byte order) or a gradient was not
    asked for, the same call on C-contiguous native-byte-order copies (all gradients asked for)
    succeeds and gives the same values (NaN == NaN) -- the CPU backend computes in float64, so
    any difference is a wrong read; uint64 targets beyond int64 are compared the same way with
    the same integers as int64 (clamped to INT64_MAX: still out of range).

Known findings (KNOWN, reported in the final tally, not fatal unless FLASHNCE_PY_FUZZ_KNOWN=0)
are recognised by the exception type *and* the generated input that causes them; see KNOWN.
FLASHNCE_PY_FUZZ_TRACE=1 prints one line per input (what was called, what came back).
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

try:  # bfloat16 for NumPy (flashnce accepts arrays whose dtype is named "bfloat16")
    import ml_dtypes

    _BF16 = ml_dtypes.bfloat16
except ImportError:  # pragma: no cover
    _BF16 = None

flashnce = None  # imported by _load(), under atheris's instrumentation when fuzzing

HEADER = 28
MAX_SIZE = 8  # n, m, d in 0..8: each input runs in well under a millisecond


def _load():
    global flashnce
    if flashnce is None:
        import flashnce as f

        flashnce = f
    return flashnce


class ContractViolation(AssertionError):
    """A call that returned broke the contract; `kind` is "layout" (differs from the contiguous
    copies' result), "finite", "unchanged" or "structure"."""

    def __init__(self, message: str, kind: str = "structure"):
        super().__init__(message)
        self.kind = kind


class Reader:
    """Sequential byte reader over the input: past the end every byte is 0."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos < len(self.data):
            b = self.data[self.pos]
            self.pos += 1
            return b
        self.pos += 1
        return 0


def element_value(b: int) -> float:
    """The C target's element table: 0, 1, -1, 0.5, 2, NaN, +inf, -inf, else (b - 128) / 64."""
    table = (0.0, 1.0, -1.0, 0.5, 2.0, math.nan, math.inf, -math.inf)
    return table[b] if b < 8 else (b - 128) / 64.0


def size(b: int) -> int:
    """n, m or d: 1..MAX_SIZE (byte b is size - 1), 0 for bytes >= 248."""
    return 0 if b >= 248 else 1 + b % MAX_SIZE


def pick(b: int, table, valid: int = 0, threshold: int = 192):
    """table[...]: below `threshold` one of the first `valid` entries (when valid > 0), else any."""
    if valid and b < threshold:
        return table[b % valid]
    return table[b % len(table)]


# ---- dtypes ----------------------------------------------------------------------------------

_ZERO_ITEMSIZE = np.dtype([])  # a structured dtype without fields: itemsize 0


def _dtypes():
    # Without ml_dtypes the bfloat16 slot holds float32, so that every index (and so every
    # corpus file) decodes to the same choice of slot either way.
    valid = [np.dtype(np.float32), np.dtype(np.float16), np.dtype(_BF16 or np.float32)]
    other = [
        np.dtype(np.float64),
        np.dtype(np.int32),
        np.dtype(np.bool_),
        np.dtype(object),
        np.dtype(np.complex64),
        np.dtype(">f4"),  # float32 in non-native byte order: named "float32"
        np.dtype(">f2"),
        _ZERO_ITEMSIZE,
        np.dtype(np.int8),
        np.dtype(np.uint16),
        np.dtype(np.longdouble),
    ]
    return valid, valid + other


VALID_DTYPES, ALL_DTYPES = _dtypes()


def _convert(values: np.ndarray, dt: np.dtype) -> np.ndarray:
    if dt == _ZERO_ITEMSIZE:
        return np.zeros(values.shape, dtype=dt)
    if dt.kind in "iub":
        return np.nan_to_num(values, nan=0.0, posinf=7.0, neginf=-7.0).astype(dt)
    return values.astype(dt)


def _native(x):
    """A C-contiguous copy in native byte order (what the layout-invariance check compares to)."""
    if not isinstance(x, np.ndarray):
        return x
    dt = x.dtype
    if dt.byteorder not in ("=", "|") and not dt.isnative:
        dt = dt.newbyteorder("=")
    return np.array(x, dtype=dt, order="C", copy=True)  # (ascontiguousarray makes 0-d 1-d)


# ---- layouts ---------------------------------------------------------------------------------

LAYOUTS = (
    "c",
    "fortran",
    "row_step",
    "col_step",
    "rev_rows",
    "rev_cols",
    "broadcast_rows",
    "padded_rows",
    "unaligned",
    "readonly",
    "transposed",
    "broadcast_all",
    "overlapping_rows",
    "odd_byte_stride",
)


def _with_layout(v: np.ndarray, dt: np.dtype, layout: str) -> np.ndarray:
    """An array of v's shape (rows, d) and values in dtype dt, laid out as `layout`."""
    rows, d = v.shape
    nan = math.nan
    if layout == "fortran":
        return np.asfortranarray(_convert(v, dt))
    if layout == "row_step":
        big = np.full((2 * rows, d), nan)
        big[::2] = v
        return _convert(big, dt)[::2]
    if layout == "col_step":
        big = np.full((rows, 2 * d), nan)
        big[:, ::2] = v
        return _convert(big, dt)[:, ::2]
    if layout == "rev_rows":
        return _convert(np.ascontiguousarray(v[::-1]), dt)[::-1]
    if layout == "rev_cols":
        return _convert(np.ascontiguousarray(v[:, ::-1]), dt)[:, ::-1]
    if layout == "broadcast_rows" and rows > 0:
        return np.broadcast_to(_convert(v[:1], dt), (rows, d))
    if layout == "padded_rows":
        big = np.full((rows, d + 3), nan)
        big[:, :d] = v
        return _convert(big, dt)[:, :d]
    if layout == "unaligned" and dt.itemsize > 1 and dt.kind != "O":
        c = _convert(v, dt)
        buf = bytearray(c.nbytes + 1)
        buf[1:] = c.tobytes()
        return np.frombuffer(buf, dtype=dt, offset=1).reshape(v.shape)
    if layout == "readonly":
        c = _convert(v, dt)
        c.flags.writeable = False
        return c
    if layout == "transposed":
        return _convert(np.ascontiguousarray(v.T), dt).T
    if layout == "broadcast_all" and rows > 0 and d > 0:
        return np.broadcast_to(_convert(v[:1, :1], dt), (rows, d))
    if layout == "overlapping_rows" and dt.itemsize > 0 and dt.kind != "O" and rows > 0 and d > 0:
        flat = _convert(np.resize(v.ravel(), rows + d - 1), dt)  # row i starts at element i
        return np.lib.stride_tricks.as_strided(
            flat, shape=(rows, d), strides=(dt.itemsize, dt.itemsize), writeable=False
        )
    if layout == "odd_byte_stride" and dt.itemsize > 1 and dt.kind != "O" and rows > 0 and d > 0:
        c = _convert(v, dt)
        ld = d * dt.itemsize + 1  # not a multiple of the element size
        buf = np.zeros(rows * ld + dt.itemsize, dtype=np.uint8)
        for i in range(rows):
            buf[i * ld : i * ld + d * dt.itemsize] = np.frombuffer(c[i].tobytes(), np.uint8)
        return np.ndarray(shape=(rows, d), dtype=dt, buffer=buf, strides=(ld, dt.itemsize))
    return _convert(v, dt)


# ---- option tables ---------------------------------------------------------------------------


def _tables():
    C = _load()._C
    losses = ["infonce", "clip", "nt_xent", "supcon", "vae_prior", "moco", "CLIP", "nope", None, 3]
    # The valid values first (pick(..., valid=k)), then wrong ones.
    similarity = ["dot", "cosine", "neg_sq_dist", "COSINE", C.Similarity.DOT,
                  C.Similarity.NEG_SQ_DIST, "bogus", 7, "", C.Positives.LABELS, None]
    positives = ["diagonal", "targets", "labels", "view_pairs", C.Positives.VIEW_PAIRS,
                 C.Positives.TARGETS, "x", 2, C.Normalizer.ALL, None]
    normalizer = ["all", "negatives", C.Normalizer.NEGATIVES, "some", 1.5]
    direction = ["rows", "symmetric", C.Direction.SYMMETRIC, "columns", 0]
    reduction = ["mean", "sum", "none", "NONE", C.Reduction.NONE, None, "avg", b"sum"]
    flags = [False, True, 0, 1, "yes", None, np.bool_(True), np.array([1, 0]), 2.5]
    return losses, similarity, positives, normalizer, direction, reduction, flags


_TABLES = None


def tables():
    global _TABLES
    if _TABLES is None:
        _TABLES = _tables()
    return _TABLES


SCALE_VALUES = (1.0, 0.5, 10.0, 100.0, 0.0, -1.0, -100.0, 2.5, math.nan, math.inf, -math.inf,
                1e30, 1e-30, 101.0)
SCALE_KINDS = ("float", "int", "f32_1", "f32_0d", "f32_11", "np_f32", "np_f64", "f64_1",
               "f16_1", "f32_2", "f32_step", "f32_rev", "f32_be", "bool", "none", "str",
               "huge_int", "complex", "f32_empty", "i32_1")


class Gen:
    """What the decoder generated, for the checks and the known-finding signatures."""

    def __init__(self):
        self.noncanonical = False
        self.non_native = False
        self.zero_itemsize = False
        self.huge_int = False
        self.big_uint_targets = False
        self.notes = []


def _int_vector(r: Reader, count: int, m: int, kind: str, labels: bool):
    vals = []
    for _ in range(count):
        b = r.byte()
        if b == 255:
            vals.append(np.iinfo(np.int64).min)
        elif b == 254:
            vals.append(np.iinfo(np.int64).max)
        elif labels:
            vals.append(b % 4)
        else:
            vals.append(b % (m + 4) - 1)  # -1 (ignored) .. m + 2 (out of range)
    v = np.array(vals, dtype=np.int64)
    if kind == "int64":
        return v
    if kind == "int32":
        return v.astype(np.int32)
    if kind == "uint8":
        return v.astype(np.uint8)
    if kind == "float64":
        return v.astype(np.float64) + 0.25
    if kind == "float_nan":
        f = v.astype(np.float64)
        if f.size:
            f[0] = math.nan
        return f
    if kind == "bool":
        return v.astype(bool)
    if kind == "object":
        return v.astype(object)
    if kind == "longer":
        return np.append(v, 0)
    if kind == "column":
        return v.reshape(-1, 1)
    if kind == "step":
        big = np.zeros(2 * count, np.int64)
        big[::2] = v
        return big[::2]
    if kind == "rev":
        return np.ascontiguousarray(v[::-1])[::-1]
    if kind == "list":
        return v.tolist()
    if kind == "be":
        return v.astype(">i8")
    if kind == "uint64":  # INT64_MIN (byte 255) becomes 2**63: out of range, and out of int64's
        return v.astype(np.uint64)
    if kind == "scalar0d":
        return v[:1].reshape(()) if count else v
    if kind == "empty":
        return v[:0]
    return v


INT_KINDS = ("int64", "int32", "uint8", "float64", "float_nan", "bool", "object", "longer",
             "column", "step", "rev", "list", "be", "scalar0d", "empty", "uint64")


def _float_vector(r: Reader, count: int, kind: str):
    v = np.array([element_value(8 + r.byte() % 248) if kind != "nonfinite" else
                  element_value(r.byte()) for _ in range(count)], dtype=np.float64)
    if kind in ("f32", "nonfinite"):
        return v.astype(np.float32)
    if kind == "zeros":
        return np.zeros(count, np.float32)
    if kind == "f64":
        return v
    if kind == "longer":
        return np.zeros(count + 1, np.float32)
    if kind == "none":
        return None
    if kind == "be":
        return v.astype(">f4")
    if kind == "column":
        return v.astype(np.float32).reshape(-1, 1)
    if kind == "step":
        big = np.full(2 * count, np.nan, np.float32)
        big[::2] = v
        return big[::2]
    if kind == "list":
        return v.astype(np.float32).tolist()
    if kind == "f16":
        return v.astype(np.float16)
    return v.astype(np.float32)


FLOAT_KINDS = ("f32", "zeros", "f64", "longer", "none", "be", "column", "step", "list", "f16",
               "nonfinite")


def _scale(kind: str, value: float, gen: Gen):
    if kind == "float":
        return value
    if kind == "int":
        return int(value) if math.isfinite(value) else 3
    if kind == "f32_1":
        return np.array([value], np.float32)
    if kind == "f32_0d":
        return np.array(value, np.float32)
    if kind == "f32_11":
        return np.array([[value]], np.float32)
    if kind == "np_f32":
        return np.float32(value)
    if kind == "np_f64":
        return np.float64(value)
    if kind == "f64_1":
        return np.array([value], np.float64)
    if kind == "f16_1":
        return np.array([value], np.float16)
    if kind == "f32_2":
        return np.array([value, value], np.float32)
    if kind == "f32_step":
        gen.noncanonical = True
        return np.array([value, math.nan], np.float32)[::2]
    if kind == "f32_rev":
        gen.noncanonical = True
        return np.array([value], np.float32)[::-1]
    if kind == "f32_be":
        gen.noncanonical = True
        gen.non_native = True
        return np.array([value], ">f4")
    if kind == "bool":
        return True
    if kind == "none":
        return None
    if kind == "str":
        return "1.0"
    if kind == "huge_int":
        gen.huge_int = True
        return 10**400
    if kind == "complex":
        return 1j
    if kind == "f32_empty":
        return np.zeros(0, np.float32)
    if kind == "i32_1":
        return np.array([3], np.int32)
    return value


def _scale_value(s):
    """The scale as a float when it is one value the package accepts, else None."""
    try:
        if isinstance(s, np.ndarray):
            if s.size != 1 or s.dtype.kind != "f":
                return None
            return float(s.reshape(-1)[0])
        if isinstance(s, (bool, int, float, np.floating)):
            return float(s)
    except (OverflowError, TypeError, ValueError):
        return None
    return None


# ---- the check -------------------------------------------------------------------------------

_TALLY = {}


def _count(key: str):
    _TALLY[key] = _TALLY.get(key, 0) + 1


def tally() -> dict:
    return dict(_TALLY)


def allowed_exceptions():
    f = _load()
    return (TypeError, ValueError, f.NotSupportedError)


# Known findings: (name, exception type, predicate on Gen).  Each is a bug in the Python layer
# (python/flashnce/_core.py) found by this target, with a regression input in
# tests/fuzz/corpus/python_regression/<name>; remove its entry when it is fixed.
KNOWN = (
    # None open.  Fixed in _core.py (2026-12-03), their inputs stay in python_regression/ as
    # regressions: zero_itemsize_dtype (ZeroDivisionError in _NumpyAdapter.info, now TypeError),
    # huge_int_scale (OverflowError from float(10**400), now ValueError), uint64_targets_wrap
    # (a uint64 target >= 2**63 wrapped negative and its row was ignored; now ValueError), and
    # non_native_byte_order ('>f4' bytes read as native float32; now converted to native order).
)


def _known(exc: BaseException, gen: Gen):
    for name, typ, pred in KNOWN:
        if isinstance(exc, typ) and pred(gen, exc):
            return name
    return None


def _snapshot(objs):
    snap = []
    for x in objs:
        if isinstance(x, np.ndarray) and x.dtype.kind != "O" and x.dtype.itemsize > 0:
            snap.append((x, np.ascontiguousarray(x).tobytes()))
    return snap


def _check_unchanged(snap, call):
    for x, before in snap:
        if np.ascontiguousarray(x).tobytes() != before:
            raise ContractViolation(
                f"{call} modified an input array ({x.dtype}, {x.shape})", "unchanged")


def _finite(x, allow_neg_inf=False) -> bool:
    v = np.asarray(x, dtype=np.float64)
    if allow_neg_inf:
        return not (np.isnan(v).any() or np.isposinf(v).any())
    return bool(np.isfinite(v).all())


def _same(x, y) -> bool:
    if x is None or y is None:
        return x is None and y is None
    if x.shape != y.shape or x.dtype.name != y.dtype.name:
        return False
    return np.array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64), equal_nan=True)


def _trace(msg: str):
    if os.environ.get("FLASHNCE_PY_FUZZ_TRACE"):
        print("trace: " + msg, file=sys.stderr)


def run_one(data: bytes, tolerate_known: bool = True) -> str:
    """Decodes one input, calls the API and checks the contract.  Returns the outcome ("ok",
    "rejected:<Type>", "known:<name>"; for forward-then-backward "ok" when both returned, else
    "<forward's>+<backward's>"); raises on a finding (an undocumented exception or a
    ContractViolation)."""
    f = _load()
    gen = Gen()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            outcome = _run(f, Reader(data), gen)
        except Exception as exc:  # noqa: BLE001 -- classified below
            name = _known(exc, gen)
            if name is not None and tolerate_known:
                _count("known:" + name)
                _trace(f"known finding {name}: {type(exc).__name__}: {exc}")
                return "known:" + name
            raise
    _count(outcome)
    return outcome


def _run(f, r: Reader, gen: Gen) -> str:
    losses, sims, poss, norms, dirs, reds, flags = tables()
    h = [r.byte() for _ in range(HEADER)]
    func = ("fwd_bwd", "forward", "backward", "make_config")[h[0] % 4]
    loss = pick(h[1], losses, valid=6, threshold=224)
    dt_a = pick(h[2], ALL_DTYPES, valid=len(VALID_DTYPES), threshold=200)
    dt_b = dt_a if h[3] < 160 else pick(h[3], ALL_DTYPES, valid=len(VALID_DTYPES), threshold=200)
    n, m, d = size(h[4]), size(h[5]), size(h[6])
    lay_a = LAYOUTS[0] if h[7] < 96 else LAYOUTS[h[7] % len(LAYOUTS)]
    lay_b = LAYOUTS[0] if h[8] < 96 else LAYOUTS[h[8] % len(LAYOUTS)]
    rank = h[9]
    self_mode = bool(h[10] & 1)
    skind = SCALE_KINDS[0] if h[11] < 64 else SCALE_KINDS[h[11] % len(SCALE_KINDS)]
    svalue = SCALE_VALUES[h[12] % len(SCALE_VALUES)]
    opts = {}
    # An override when the byte is >= 160 (reduction: >= 64); a valid value below 240.
    if h[13] >= 160:
        opts["similarity"] = pick(h[13], sims, valid=6, threshold=240)
    if h[14] >= 160:
        opts["positives"] = pick(h[14], poss, valid=6, threshold=240)
    if h[15] >= 160:
        opts["normalizer"] = pick(h[15], norms, valid=3, threshold=240)
    if h[16] >= 160:
        opts["direction"] = pick(h[16], dirs, valid=3, threshold=240)
    if h[17] >= 64:
        opts["reduction"] = pick(h[17], reds, valid=5, threshold=240)
    if h[18] >= 192:
        opts["exclude_self"] = flags[h[18] % len(flags)]
    if h[18] & 1 and h[18] >= 128:
        opts["allow_tf32"] = flags[(h[18] >> 1) % len(flags)]
    tkind = None if h[19] < 160 else INT_KINDS[h[19] % len(INT_KINDS)]
    lkind = h[20]
    lse_kind = h[21]
    gkind = h[22]
    need = (True, True, True)  # need_grad_a, need_grad_b, need_grad_logit_scale
    if h[23] >= 160:
        need = (bool(h[23] & 1), bool(h[23] & 2), bool(h[23] & 4))
    listify = h[24] >= 250  # `a` as a nested list instead of an ndarray
    d_b = d if h[25] < 224 else d % MAX_SIZE + 1  # b's d differs from a's
    col_kind = None if h[26] < 128 else FLOAT_KINDS[h[26] % len(FLOAT_KINDS)]

    if dt_a == _ZERO_ITEMSIZE or dt_b == _ZERO_ITEMSIZE:
        gen.zero_itemsize = True
    if not dt_a.isnative or (not self_mode and not dt_b.isnative):
        gen.non_native = True
    if lay_a != "c" or (not self_mode and lay_b != "c"):
        gen.noncanonical = True

    if func == "make_config":
        kwargs = dict(opts)
        kwargs["has_targets"] = bool(h[19] & 1)
        kwargs["has_labels"] = bool(h[20] & 1)
        cfg = _call(f.make_config, (loss,), kwargs, "make_config")
        if isinstance(cfg, str):
            return cfg
        if not isinstance(cfg, f.LossConfig):
            raise ContractViolation(f"make_config returned {type(cfg)!r}")
        if f.LossConfig.from_ints(cfg.as_ints()) != cfg:
            raise ContractViolation("LossConfig.from_ints(as_ints()) does not round-trip")
        return "ok"

    # ---- the arrays ----
    va = np.array([element_value(r.byte()) for _ in range(n * d)], np.float64).reshape(n, d)
    a = _with_layout(va, dt_a, lay_a)
    b = None
    if not self_mode:
        vb = np.array([element_value(r.byte()) for _ in range(m * d_b)], np.float64)
        vb = vb.reshape(m, d_b)
        b = _with_layout(vb, dt_b, lay_b)
    m_eff = n if self_mode else m
    if rank >= 232:  # a wrong rank for a (or b)
        which = rank % 4
        if which == 0:
            a = a.reshape(-1)
        elif which == 1:
            a = a[None]
        elif which == 2 and b is not None:
            b = b.reshape(-1)
        else:
            a = np.asarray(a).reshape(-1)[:1].reshape(()) if a.size else a.reshape(-1)
    if listify:
        a = a.tolist() if a.dtype.kind != "V" else a
    scale = _scale(skind, svalue, gen)

    targets = None
    if tkind is not None:
        targets = _int_vector(r, n, m_eff, tkind, labels=False)
        if tkind == "be":
            gen.noncanonical = True
        if tkind in ("step", "rev"):
            gen.noncanonical = True
        if tkind == "uint64" and bool((targets > np.iinfo(np.int64).max).any()):
            gen.noncanonical = gen.big_uint_targets = True
    labels = None
    if lkind >= 160:
        lk = lkind % 12
        ik = INT_KINDS[0] if lkind < 224 else INT_KINDS[lkind % len(INT_KINDS)]
        la = _int_vector(r, n, m_eff, ik, labels=True)
        lb = _int_vector(r, m_eff, m_eff, ik, labels=True)
        if ik in ("be", "step", "rev"):
            gen.noncanonical = True
        labels = (
            la,
            (la, lb),
            [la, lb],
            (la,),
            (la, lb, lb),
            (lb, la),
            (la, None),
            la if self_mode else (la, lb),
            (la, lb) if self_mode else la,
            la,
            (la, lb),
            la if self_mode else (la, lb),
        )[lk]

    # ---- forward ----
    fw_kwargs = dict(opts)
    fw_kwargs["loss"] = loss
    if targets is not None:
        fw_kwargs["targets"] = targets
    if labels is not None:
        fw_kwargs["labels"] = labels
    inputs = [a, b, scale, targets]
    if isinstance(labels, (tuple, list)):
        inputs.extend(labels)
    else:
        inputs.append(labels)

    # What the package resolves these options to (None when it rejects them).
    try:
        cfg = f.make_config(
            loss,
            has_targets=targets is not None,
            has_labels=labels is not None,
            **opts,
        )
    except (TypeError, ValueError):
        cfg = None

    scale_v = _scale_value(scale)
    arrays_ok = isinstance(a, np.ndarray) and a.ndim == 2 and (b is None or b.ndim == 2)
    float_ok = arrays_ok and a.dtype in VALID_DTYPES + [np.dtype(">f4"), np.dtype(">f2")]
    inputs_finite = (
        float_ok
        and _finite(a)
        and (b is None or (b.dtype.kind == "f" or b.dtype in VALID_DTYPES) and _finite(b))
    )
    scale_moderate = scale_v is not None and math.isfinite(scale_v) and abs(scale_v) <= 100.0
    targets_ok = True
    if cfg is not None and cfg.positives == f._C.Positives.TARGETS:
        targets_ok = (
            isinstance(targets, np.ndarray)
            and targets.dtype.kind in "iu"
            and bool((targets < m_eff).all())  # exact, without a cast
        )
    finite_case = inputs_finite and scale_moderate and targets_ok

    fwd = None
    fwd_outcome = "ok"  # for "fwd_bwd": the outcome is "ok" only when both calls returned
    if func in ("fwd_bwd", "forward"):
        snap = _snapshot(inputs)
        fwd = _call(f.forward, (a, b, scale), fw_kwargs, "forward")
        _check_unchanged(snap, "forward")
        if isinstance(fwd, str):
            _trace(f"forward {fwd} n={n} m={m} d={d} {dt_a} {lay_a} {skind}")
            if func == "forward":
                return fwd
            fwd_outcome, fwd = fwd, None
        else:
            if cfg is None:
                raise ContractViolation("forward accepted options that make_config rejects")
            _check_forward(f, fwd, cfg, n, m_eff, finite_case)
            if gen.noncanonical or gen.non_native:
                ref = _call(f.forward, _natives((a, b, scale)), _native_kwargs(fw_kwargs),
                            "forward (contiguous copies)")
                if isinstance(ref, str):
                    raise ContractViolation(
                        f"forward on contiguous copies was {ref} but the original succeeded")
                for name, x, y in zip(("loss", "row_lse", "col_lse"), fwd, ref):
                    if not _same(x, y):
                        raise ContractViolation(
                            f"forward's {name} differs from the contiguous copies' "
                            f"({lay_a}/{lay_b}, {dt_a}/{dt_b}, scale {skind}): {x} vs {y}",
                            "layout")
            _trace(f"forward ok n={n} m={m} d={d} {dt_a} {lay_a}")
            if func == "forward":
                return "ok"

    # ---- backward ----
    sym = cfg is not None and cfg.symmetric
    from_forward = fwd is not None and lse_kind < 128
    if from_forward:
        row_lse, col_lse = fwd[1], fwd[2]
    else:
        lk = FLOAT_KINDS[0] if lse_kind < 128 else FLOAT_KINDS[lse_kind % len(FLOAT_KINDS)]
        row_lse = _float_vector(r, n, lk)
        col_lse = _float_vector(r, m_eff, lk) if (sym or lse_kind & 1) else None
        if lk in ("be", "step"):
            gen.noncanonical = True
            if lk == "be":
                gen.non_native = True
    if col_kind is not None:  # col_lse made up on its own (also after a forward)
        from_forward = False
        col_lse = _float_vector(r, m_eff, col_kind)
        if col_kind in ("be", "step"):
            gen.noncanonical = True
            if col_kind == "be":
                gen.non_native = True
    loss_count = 1
    if cfg is not None and cfg.reduction == f._C.Reduction.NONE:
        loss_count = n + m_eff if sym else n
    grad_loss = None
    gl_finite = True
    if gkind >= 128 or loss_count != 1:
        g = gkind % 12
        if g == 0:
            grad_loss = 1.5
        elif g == 1:
            grad_loss = 2
        elif g == 2:
            grad_loss = 10**400
            gen.huge_int = True
        elif g == 3:
            grad_loss = np.float32(1.0)
        elif g == 4:
            grad_loss = _float_vector(r, loss_count, "be")
            gen.noncanonical = gen.non_native = True
        elif g == 5:
            grad_loss = _float_vector(r, loss_count, "f64")
        elif g == 6:
            grad_loss = _float_vector(r, loss_count + 1, "f32")
        elif g == 7:
            grad_loss = _float_vector(r, loss_count, "nonfinite")
            gl_finite = _finite(grad_loss)
        elif g == 8:
            grad_loss = _float_vector(r, loss_count, "step")
            gen.noncanonical = True
        elif g == 9:
            grad_loss = None
        else:
            grad_loss = _float_vector(r, loss_count, "f32")
    if not all(need):
        gen.noncanonical = True
    bw_kwargs = dict(fw_kwargs)
    bw_kwargs.update(need_grad_a=need[0], need_grad_b=need[1], need_grad_logit_scale=need[2])
    args = (a, b, scale, row_lse, col_lse, grad_loss)
    snap = _snapshot(inputs + [row_lse, col_lse, grad_loss])
    out = _call(f.backward, args, bw_kwargs, "backward")
    _check_unchanged(snap, "backward")
    if isinstance(out, str):
        _trace(f"backward {out} n={n} m={m} d={d} {dt_a} from_forward={from_forward}")
        return out if fwd_outcome == "ok" else f"{fwd_outcome}+{out}"
    if cfg is None:
        raise ContractViolation("backward accepted options that make_config rejects")
    bw_finite = (
        from_forward and finite_case and gl_finite and not isinstance(grad_loss, int)
    )
    _check_backward(f, out, a, b, scale, n, m_eff, d, need, bw_finite, scale_v)
    if gen.noncanonical or gen.non_native:
        kw = _native_kwargs(bw_kwargs)
        kw.update(need_grad_a=True, need_grad_b=True, need_grad_logit_scale=True)
        ref = _call(f.backward, _natives(args), kw, "backward (contiguous copies)")
        if isinstance(ref, str):
            raise ContractViolation(
                f"backward on contiguous copies was {ref} but the original succeeded")
        for name, x, y in zip(("grad_a", "grad_b", "grad_logit_scale"), out, ref):
            if x is not None and not _same(x, y):
                raise ContractViolation(
                    f"backward's {name} differs from the contiguous copies' (all gradients "
                    f"asked for; need {need}, {lay_a}/{lay_b}, {dt_a}/{dt_b}): {x} vs {y}",
                    "layout")
    _trace(f"backward ok n={n} m={m} d={d} {dt_a} from_forward={from_forward}")
    return fwd_outcome if fwd_outcome == "ok" else f"{fwd_outcome}+ok"


def _natives(args):
    return tuple(_native(x) for x in args)


def _native_kwargs(kw):
    out = {}
    for k, v in kw.items():
        if k == "targets" and isinstance(v, np.ndarray) and v.dtype == np.uint64:
            # the same integers in int64, those beyond int64 clamped to INT64_MAX (as out of
            # range, >= m, as they were)
            out[k] = np.minimum(v, np.uint64(np.iinfo(np.int64).max)).astype(np.int64)
        elif isinstance(v, np.ndarray):
            out[k] = _native(v)
        elif isinstance(v, tuple):
            out[k] = tuple(_native(x) for x in v)
        elif isinstance(v, list) and v and isinstance(v[0], np.ndarray):
            out[k] = [_native(x) for x in v]
        else:
            out[k] = v
    return out


def _call(fn, args, kwargs, what):
    """The call; a documented exception becomes the string "rejected:<Type>"."""
    try:
        return fn(*args, **kwargs)
    except allowed_exceptions() as exc:
        return "rejected:" + type(exc).__name__


def _check_forward(f, out, cfg, n, m, finite_case):
    if not (isinstance(out, tuple) and len(out) == 3):
        raise ContractViolation(f"forward returned {type(out)!r}, not a 3-tuple")
    loss, row_lse, col_lse = out
    for name, x in (("loss", loss), ("row_lse", row_lse)):
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            raise ContractViolation(f"forward's {name} is {type(x)!r} {getattr(x, 'dtype', '')}")
    want = ()
    if cfg.reduction == f._C.Reduction.NONE:
        want = (n + m,) if cfg.symmetric else (n,)
    if loss.shape != want:
        raise ContractViolation(f"forward's loss has shape {loss.shape}, expected {want}")
    if row_lse.shape != (n,):
        raise ContractViolation(f"row_lse has shape {row_lse.shape}, expected ({n},)")
    if cfg.symmetric:
        if not isinstance(col_lse, np.ndarray) or col_lse.dtype != np.float32 or \
                col_lse.shape != (m,):
            raise ContractViolation(f"col_lse is {col_lse!r}, expected float32 ({m},)")
    elif col_lse is not None:
        raise ContractViolation("col_lse is not None for direction 'rows'")
    if finite_case:
        if not _finite(loss):
            raise ContractViolation(f"finite input gave a non-finite loss {loss}", "finite")
        if not _finite(row_lse, allow_neg_inf=True):
            raise ContractViolation(f"finite input gave a NaN/+inf row_lse {row_lse}", "finite")
        if col_lse is not None and not _finite(col_lse, allow_neg_inf=True):
            raise ContractViolation(f"finite input gave a NaN/+inf col_lse {col_lse}", "finite")


def _check_backward(f, out, a, b, scale, n, m, d, need, finite_case, scale_v):
    if not (isinstance(out, tuple) and len(out) == 3):
        raise ContractViolation(f"backward returned {type(out)!r}, not a 3-tuple")
    ga, gb, gs = out
    self_mode = b is None
    want_a = need[0] or (self_mode and need[1])
    want_b = need[1] and not self_mode
    for name, g, want, shape in (("grad_a", ga, want_a, (n, d)), ("grad_b", gb, want_b, (m, d))):
        if not want:
            if g is not None:
                raise ContractViolation(f"{name} was not asked for but is {type(g)!r}")
            continue
        if not isinstance(g, np.ndarray) or g.shape != shape or g.dtype.name != a.dtype.name:
            raise ContractViolation(
                f"{name} is {type(g)!r} {getattr(g, 'shape', '')} {getattr(g, 'dtype', '')}, "
                f"expected {shape} {a.dtype.name}")
    if need[2]:
        sshape = scale.shape if isinstance(scale, np.ndarray) else (1,)
        if not isinstance(gs, np.ndarray) or gs.dtype != np.float32 or gs.shape != sshape:
            raise ContractViolation(f"grad_logit_scale is {gs!r}, expected float32 {sshape}")
    elif gs is not None:
        raise ContractViolation("grad_logit_scale was not asked for but is not None")
    if finite_case:
        f32 = a.dtype.name == "float32"
        if gs is not None and (f32 or abs(scale_v) <= 10.0) and not _finite(gs):
            raise ContractViolation(
                f"finite input gave a non-finite grad_logit_scale {gs}", "finite")
        if f32 and ga is not None and not _finite(ga):
            raise ContractViolation("finite input gave a non-finite grad_a")
        if f32 and gb is not None and not _finite(gb):
            raise ContractViolation("finite input gave a non-finite grad_b")


# ---- atheris entry point ---------------------------------------------------------------------

_EXECS = [0]


def TestOneInput(data: bytes):  # noqa: N802 -- atheris's name
    run_one(data, tolerate_known=os.environ.get("FLASHNCE_PY_FUZZ_KNOWN", "1") != "0")
    _EXECS[0] += 1
    if _EXECS[0] & (_EXECS[0] - 1) == 0 and _EXECS[0] >= 1024:
        print(f"#{_EXECS[0]} tally: {_tally_line()}", file=sys.stderr, flush=True)


def _tally_line() -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(_TALLY.items()))


def replay(paths) -> int:
    """Runs each file (or each file of each directory) once without atheris; prints the tally.
    Returns the number of findings (each printed with its file)."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files.extend(os.path.join(p, f) for f in sorted(os.listdir(p)))
        else:
            files.append(p)
    tolerate = os.environ.get("FLASHNCE_PY_FUZZ_KNOWN", "1") != "0"
    findings = 0
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            run_one(data, tolerate_known=tolerate)
        except Exception as exc:  # noqa: BLE001 -- a finding: report it and go on
            findings += 1
            print(f"FINDING {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"replayed {len(files)} inputs, {findings} findings; tally: {_tally_line()}",
          file=sys.stderr)
    return findings


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":  # no atheris needed
        sys.exit(1 if replay(sys.argv[2:]) else 0)
    import atheris

    # Coverage feedback from the package's Python code (flashnce, flashnce._core) and from this
    # decoder (so that every layout / dtype / option branch counts as new); the native extension
    # (flashnce._C, the C library) is not instrumented.  The harness is imported as a module, not
    # run as __main__, so that atheris can instrument it.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    with atheris.instrument_imports(include=["flashnce", "python_api_fuzz"]):
        import python_api_fuzz as harness

        harness._load()
        import flashnce._core  # noqa: F401
    harness.tables()
    atheris.Setup(sys.argv, harness.TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
