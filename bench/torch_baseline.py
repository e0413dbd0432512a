#!/usr/bin/env python3
"""The same four losses written the way PyTorch users write them (matmul + cross_entropy), timed
with CUDA events, for flashnce_bench's table (scripts/device-check.sh merges the CSV).

    python3 bench/torch_baseline.py --csv torch.csv [--full] [--max-n N] [--time-budget S]
    python3 bench/torch_baseline.py --device cpu --csv cpu.csv [--max-n N] [--time-budget S]

--device cpu: the naive PyTorch loss on CPU tensors (rows torch_cpu_fwd / torch_cpu_fwdbwd) and
FlashNCE's host backend through flashnce.torch.contrastive_loss on the same tensors (rows
host_fwd / host_fwdbwd), side by side in one run: InfoNCE and CLIP (dot similarity, as the torch
code), f32, d = 256, n = 1024, 4096, 16384 and (CLIP) 65536; wall-clock time.perf_counter, one
warm-up call, median of the repetitions that fit the row's share of the time budget.  Memory:
the call's peak resident set above the process's resident set before it (VmHWM after resetting
it through /proc/self/clear_refs).  A torch row whose n x n matrices cannot fit the machine's
available memory (estimate: 6 f32 n x n matrices for forward + backward, 3 for forward) is
skipped and says so instead of being run into the OOM killer.

Shapes: the same default / full sets as flashnce_bench (bench/bench_setup.cpp: gpu_shapes — keep
them in sync).  Logits are computed by a matmul in the input dtype (as under autocast) and cast
to f32 for the loss; TF32 stays off (the library's f32 default is exact f32).  Rows: torch_fwd
(forward with autograd recording, as in training), torch_fwdbwd (forward + loss.backward()).
Memory: peak bytes allocated by the call beyond the inputs (torch.cuda.max_memory_allocated).
Without torch or without a CUDA device it says so and exits 0 (device-check treats that as skip).
"""
import argparse
import math
import statistics
import sys
import time

CSV_HEADER = "loss,dtype,n,m,d,variant,status,ms,flop,extra_bytes,extra_bytes_measured,note"
LOSSES = ["infonce", "clip", "nt_xent", "vae_prior"]


def shapes(full, max_n):
    out = []
    if full:
        for loss in LOSSES:
            for dt in ["bf16", "f16", "f32"]:
                for n in [1024, 4096, 16384, 65536]:
                    for d in [128, 512, 1024]:
                        out.append((loss, dt, n, d))
    else:
        for loss in LOSSES:
            for n in [4096, 16384, 65536]:
                out.append((loss, "bf16", n, 512))
        out += [("infonce", "bf16", 16384, 128), ("infonce", "bf16", 16384, 1024),
                ("infonce", "f16", 16384, 512), ("infonce", "f32", 16384, 512)]
    return [s for s in out if max_n == 0 or s[2] <= max_n]


def make_loss(torch, F, kind, scale):
    """The loss as a user writes it: a function of (a, b) -> scalar (MEAN reduction)."""

    def infonce(a, b):
        logits = (a @ b.T).float() * scale
        return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))

    def clip(a, b):
        logits = (a @ b.T).float() * scale
        labels = torch.arange(a.shape[0], device=a.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))

    def nt_xent(a, _b):  # SimCLR: 2N stacked views, self-similarity masked, positive = other view
        n = a.shape[0]
        logits = (a @ a.T).float() * scale
        eye = torch.eye(n, dtype=torch.bool, device=a.device)
        logits = logits.masked_fill(eye, float("-inf"))
        targets = (torch.arange(n, device=a.device) + n // 2) % n
        return F.cross_entropy(logits, targets)

    def vae_prior(a, b):  # normaliser = negatives only, minus log|Z|
        logits = (a @ b.T).float() * scale
        n, m = logits.shape
        eye = torch.eye(n, m, dtype=torch.bool, device=a.device)
        pos = logits.diagonal()
        neg = logits.masked_fill(eye, float("-inf"))
        return (torch.logsumexp(neg, dim=1) - math.log(m - 1) - pos).mean()

    return {"infonce": infonce, "clip": clip, "nt_xent": nt_xent, "vae_prior": vae_prior}[kind]


def time_call(torch, fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        samples.append(start.elapsed_time(stop))
    return statistics.median(samples)


def _meminfo_bytes(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return -1


def _rss_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def _peak_extra(call):
    """Runs call() once; returns the peak resident set above the one before it (bytes, or -1)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
    except OSError:
        call()
        return -1
    base = _rss_bytes("VmRSS")
    call()
    return max(0, _rss_bytes("VmHWM") - base)


def _time_cpu(call, reps, budget):
    """One warm-up call, then the median of up to `reps` calls within `budget` seconds."""
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    samples = []
    while len(samples) < reps and (not samples or sum(samples) + first < budget):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(samples), len(samples)


def cpu_main(args):
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001
        print(f"torch_baseline: PyTorch not importable ({e}); no rows")
        return 0
    try:
        import flashnce
        import flashnce.torch as fnt
    except Exception as e:  # noqa: BLE001
        print(f"torch_baseline: flashnce not importable ({e}); pip install ./python")
        return 1
    if flashnce.get_cpu_backend() != "host":
        flashnce.set_cpu_backend("host")
    print(f"torch_baseline --device cpu: torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; flashnce {flashnce.__version__} on {flashnce.device_name('host')}")
    shapes = [(loss, n) for loss in ("infonce", "clip") for n in (1024, 4096, 16384)]
    shapes.append(("clip", 65536))
    shapes = [s for s in shapes if args.max_n == 0 or s[1] <= args.max_n]
    d, scale = 256, 1.0 / 0.07
    available = _meminfo_bytes("MemAvailable")
    t_start = time.time()
    rows = []
    for loss, n in shapes:
        g = torch.Generator().manual_seed(n + d)
        a0 = (torch.rand(n, d, generator=g) - 0.5) * (2 * math.sqrt(3.0 / d))
        b0 = (torch.rand(n, d, generator=g) - 0.5) * (2 * math.sqrt(3.0 / d))
        naive = make_loss(torch, F, loss, scale)
        for variant in ("torch_cpu_fwd", "torch_cpu_fwdbwd", "host_fwd", "host_fwdbwd"):
            bwd = variant.endswith("fwdbwd")
            flop1 = 2.0 * n * n * d
            row = dict(loss=loss, dtype="f32", n=n, m=n, d=d, variant=variant, status="skipped",
                       ms=0.0, flop=flop1 * (3 if bwd else 1), extra=-1, note="")
            rows.append(row)
            spent = time.time() - t_start
            if spent > args.time_budget:
                row["note"] = f"time budget {args.time_budget:.0f} s spent"
                continue
            if variant.startswith("torch"):
                need = (6 if bwd else 3) * n * n * 4
                if available > 0 and need > available:
                    row["note"] = (f"not run: needs ~{need / 2**30:.0f} GiB for its n x n "
                                   f"matrices, {available / 2**30:.1f} GiB available")
                    print(f"  {loss}/f32/n:{n}/d:{d}/{variant}: {row['note']}", flush=True)
                    continue
            a = a0.clone().requires_grad_(True)
            b = b0.clone().requires_grad_(True)
            if variant.startswith("torch"):
                fn = naive
            else:
                def fn(x, y, _loss=loss):
                    return fnt.contrastive_loss(x, y, scale, loss=_loss, similarity="dot")

            def call():
                a.grad = None
                b.grad = None
                out = fn(a, b)
                if bwd:
                    out.backward()
                return out

            try:
                row["extra"] = _peak_extra(call)
                share = max(5.0, (args.time_budget - spent) / 4)
                row["ms"], reps = _time_cpu(call, args.reps, share)
                row["status"] = "ok"
                row["note"] = f"median of {reps}"
            except RuntimeError as e:
                row["note"] = "error: " + str(e).splitlines()[0][:120]
            del a, b
            status = f"{row['ms']:.1f} ms" if row["status"] == "ok" else row["note"]
            print(f"  {loss}/f32/n:{n}/d:{d}/{variant}: {status}, peak +{row['extra'] / 2**20:.0f}"
                  " MiB", flush=True)
    with open(args.csv, "w") as f:
        f.write(CSV_HEADER + "\n")
        for r in rows:
            note = r["note"].replace(",", ";").replace("\n", " ")
            f.write(f"{r['loss']},{r['dtype']},{r['n']},{r['m']},{r['d']},{r['variant']},"
                    f"{r['status']},{r['ms']:.6g},{r['flop']:.6g},-1,{r['extra']:.0f},{note}\n")
    # The side-by-side table: host vs naive torch on each shape.
    print("\n| loss | n | d | torch fwd ms | host fwd ms | torch fwd+bwd ms | host fwd+bwd ms |"
          " speed-up fwd+bwd | torch peak MiB | host peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    by = {(r["loss"], r["n"], r["variant"]): r for r in rows}
    for loss, n in shapes:
        def cell(v, what="ms"):
            r = by[(loss, n, v)]
            if r["status"] != "ok":
                return "—"
            return f"{r['ms']:.1f}" if what == "ms" else f"{r['extra'] / 2**20:.0f}"
        tb, hb = by[(loss, n, "torch_cpu_fwdbwd")], by[(loss, n, "host_fwdbwd")]
        speed = (f"{tb['ms'] / hb['ms']:.2f}x" if tb["status"] == hb["status"] == "ok" else "—")
        print(f"| {loss} | {n} | {d} | {cell('torch_cpu_fwd')} | {cell('host_fwd')} | "
              f"{cell('torch_cpu_fwdbwd')} | {cell('host_fwdbwd')} | {speed} | "
              f"{cell('torch_cpu_fwdbwd', 'mem')} | {cell('host_fwdbwd', 'mem')} |")
    print(f"torch_baseline: {len(rows)} rows -> {args.csv}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--max-n", type=int, default=0)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--time-budget", type=float, default=240.0, help="seconds; later rows skip")
    args = ap.parse_args()
    if args.device == "cpu":
        return cpu_main(args)

    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
        print(f"torch_baseline: PyTorch not importable ({e}); no torch rows")
        return 0
    if not torch.cuda.is_available():
        print("torch_baseline: no CUDA device visible to PyTorch; no torch rows")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print(f"torch_baseline: torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
    t0 = time.time()
    rows = []
    for loss, dt, n, d in shapes(args.full, args.max_n):
        flop1 = 2.0 * n * n * d
        for variant, mult in (("torch_fwd", 1), ("torch_fwdbwd", 3)):
            row = dict(loss=loss, dtype=dt, n=n, m=n, d=d, variant=variant, status="skipped",
                       ms=0.0, flop=flop1 * mult, extra=-1, note="")
            if time.time() - t0 > args.time_budget:
                row["note"] = f"time budget {args.time_budget:.0f} s spent"
                rows.append(row)
                continue
            a = b = None
            try:
                g = torch.Generator(device=dev).manual_seed(n + d)
                a = (torch.rand(n, d, device=dev, generator=g) - 0.5) * (2 * math.sqrt(3.0 / d))
                b = (torch.rand(n, d, device=dev, generator=g) - 0.5) * (2 * math.sqrt(3.0 / d))
                a = a.to(dtypes[dt]).requires_grad_(variant == "torch_fwdbwd")
                b = b.to(dtypes[dt]).requires_grad_(variant == "torch_fwdbwd")
                fn_loss = make_loss(torch, F, loss, 1.0 / 0.07)
                if variant == "torch_fwd":
                    a.requires_grad_(True)  # autograd records, as in training

                    def call():
                        return fn_loss(a, b)
                else:

                    def call():
                        a.grad = None
                        b.grad = None
                        fn_loss(a, b).backward()
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                call()
                torch.cuda.synchronize()
                row["extra"] = torch.cuda.max_memory_allocated() - base
                row["ms"] = time_call(torch, call, args.reps)
                row["status"] = "ok"
            except torch.cuda.OutOfMemoryError:
                row["note"] = "out of memory"
            except RuntimeError as e:
                row["note"] = "error: " + str(e).splitlines()[0][:120]
            finally:
                del a, b
                torch.cuda.empty_cache()
            rows.append(row)
            status = f"{row['ms']:.3f} ms" if row["status"] == "ok" else row["note"]
            print(f"  {loss}/{dt}/n:{n}/d:{d}/{variant}: {status}", flush=True)
    with open(args.csv, "w") as f:
        f.write(CSV_HEADER + "\n")
        for r in rows:
            note = r["note"].replace(",", ";").replace("\n", " ")
            f.write(f"{r['loss']},{r['dtype']},{r['n']},{r['m']},{r['d']},{r['variant']},"
                    f"{r['status']},{r['ms']:.6g},{r['flop']:.6g},{r['extra']:.0f},-1,{note}\n")
    print(f"torch_baseline: {len(rows)} rows -> {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
