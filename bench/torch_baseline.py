#!/usr/bin/env python3
"""The same four losses written the way PyTorch users write them (matmul + cross_entropy), timed
with CUDA events, for flashnce_bench's table (scripts/device-check.sh merges the CSV).

    python3 bench/torch_baseline.py --csv torch.csv [--full] [--max-n N] [--time-budget S]

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--max-n", type=int, default=0)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--time-budget", type=float, default=240.0, help="seconds; later rows skip")
    args = ap.parse_args()

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
