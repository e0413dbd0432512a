"""flashnce.torch's distributed all-gather mode on CPU processes (gloo) against one process holding
the whole batch: CLIP forward + backward with a learnable temperature, median of --reps steps after
one warm-up, per rank and for the single process.  The threads are split between the ranks
(--threads in all; each rank gets threads / world).

    PYTHONPATH=build/default/python/pkg python3 bench/distributed_bench.py --world 2 --n 4096

Prints a Markdown table row per configuration (bench/RESULTS.md keeps them).  CPU timings: on a
machine with as many cores as the single run's threads this measures the gather's cost, not a
multi-GPU speed-up."""

import argparse
import os
import statistics
import tempfile
import time


def _step_times(a, b, reps, distributed):
    import torch
    import flashnce.torch as ft

    loss_fn = ft.ClipLoss(init_temperature=0.07, distributed=distributed)
    times = []
    for _ in range(reps + 1):
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        t0 = time.perf_counter()
        loss = loss_fn(x, y)
        loss.backward()
        times.append(time.perf_counter() - t0)
        del x, y
    return statistics.median(times[1:]), float(loss.detach())


def _data(n, d):
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def _worker(rank, world, n, d, reps, threads, init, out):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    a, b = _data(n, d)
    rows = slice(rank * n // world, (rank + 1) * n // world)
    med, loss = _step_times(a[rows].contiguous(), b[rows].contiguous(), reps, True)
    with open(os.path.join(out, f"rank{rank}"), "w") as f:
        f.write(f"{med} {loss}\n")
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--n", type=int, default=4096, help="global batch")
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    per_rank = max(1, args.threads // args.world)
    os.environ["OMP_NUM_THREADS"] = str(per_rank)  # the host backend's OpenMP threads per rank
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(args.world, args.n, args.d, args.reps, per_rank,
                                os.path.join(tmp, "init"), tmp), nprocs=args.world, join=True)
        ranks = []
        for r in range(args.world):
            with open(os.path.join(tmp, f"rank{r}")) as f:
                med, loss = f.read().split()
                ranks.append((float(med), float(loss)))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    single, loss = _step_times(*_data(args.n, args.d), args.reps, False)
    mean_share = sum(l for _, l in ranks) / args.world
    slowest = max(m for m, _ in ranks)
    print("| world | global n | d | threads per rank | slowest rank ms | one process ms "
          "(all threads) | mean share / global loss |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.world} | {args.n} | {args.d} | {per_rank} | {slowest * 1e3:.1f} | "
          f"{single * 1e3:.1f} | {mean_share:.6f} / {loss:.6f} |")


if __name__ == "__main__":
    main()
