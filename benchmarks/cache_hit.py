"""Cache-hit validation of a large image: stamp check vs re-hashing, side by side.

A 1 GiB blob is stored in a temporary cache; then `Cache.has_blob` (size +
mtime against the stamp written at verification) and the same call with
`verify=True` (what --verify-cache does: a full re-hash) are timed.
Target: the stamp check <= 50 ms.

    python benchmarks/cache_hit.py [--mib 1024] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.images.cache import Cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    block = bytes(range(256)) * 4096  # 1 MiB
    with tempfile.TemporaryDirectory() as d:
        cache = Cache(Path(d))
        with cache.new_blob() as (f, h):
            for _ in range(args.mib):
                f.write(block)
                h.update(block)
        sha = h.hexdigest()
        stamp = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            assert cache.has_blob(sha)
            stamp.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert Cache(Path(d), verify=True).has_blob(sha)
        rehash = time.perf_counter() - t
    ms = statistics.median(stamp) * 1000
    print(f"{args.mib} MiB blob: stamp check {ms:.3f} ms (median of {args.repeat}), "
          f"full re-hash {rehash * 1000:.0f} ms, ratio {rehash * 1000 / ms:.0f}x")
    print(f"target <= 50 ms: {'met' if ms <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
