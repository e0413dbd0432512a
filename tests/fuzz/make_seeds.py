#!/usr/bin/env python3
# Writes tests/fuzz/corpus/seed/: one input per loss configuration the API tests and the README's
# presets use (infonce, clip, nt_xent, supcon, vae_prior, moco, targets), each on the CPU, host and
# CUDA backends and in each dtype, encoded in api_fuzz.cpp's byte layout (header bytes, then data).
import itertools, os, random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "seed")

# (name, sim, positives, normalizer, direction, exclude_self, n, m, d, self_mode)
CONFIGS = [
    ("infonce", 0, 0, 0, 0, 0, 4, 5, 3, False),
    ("clip", 1, 0, 0, 1, 0, 4, 4, 3, False),
    ("nt_xent", 1, 3, 0, 0, 1, 4, 4, 3, True),
    ("supcon", 1, 2, 0, 0, 1, 5, 5, 2, True),
    ("vae_prior", 2, 0, 1, 0, 0, 3, 4, 2, False),
    ("moco", 1, 0, 0, 0, 0, 2, 6, 3, False),
    ("targets", 0, 1, 0, 1, 0, 3, 4, 2, False),
]

def encode(cfg, backend, dtype, reduction, rng):
    name, sim, pos, norm, direction, excl, n, m, d, self_mode = cfg
    ptr_modes = 1 if self_mode else 0
    hdr = [backend, dtype, sim, pos, norm, direction, reduction, excl, 0, n, m, d, 0, 0,
           ptr_modes, 0, 0, 0, 0]
    rows = n + (0 if self_mode else m)
    data = [rng.randrange(8, 256) for _ in range(rows * d)]   # finite elements
    data += [rng.randrange(0, 200) for _ in range(3 * 8)]       # targets / labels
    data += [rng.randrange(0, 256) for _ in range(16)]          # grad_loss and the rest
    return bytes(hdr + data)

def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(16)
    for cfg, backend, dtype, reduction in itertools.product(CONFIGS, (1, 0), (0, 1, 2), (0, 2)):
        path = os.path.join(OUT, f"{cfg[0]}_be{backend}_dt{dtype}_red{reduction}")
        with open(path, "wb") as f:
            f.write(encode(cfg, backend, dtype, reduction, rng))
    # The host backend (FNCE_BACKEND_HOST = 2), its own generator so the seeds above stay as they
    # were.
    rng = random.Random(15)
    for cfg, dtype, reduction in itertools.product(CONFIGS, (0, 1, 2), (0, 2)):
        path = os.path.join(OUT, f"{cfg[0]}_be2_dt{dtype}_red{reduction}")
        with open(path, "wb") as f:
            f.write(encode(cfg, 2, dtype, reduction, rng))

if __name__ == "__main__":
    main()
