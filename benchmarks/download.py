"""Download throughput from a loopback HTTP server: the harness vs `curl -o`.

One file (default 512 MiB) is served by a threaded http.server on
127.0.0.1; the harness's Downloader (streaming to a .part file, hashing as
it goes) and curl fetch it alternately. Prints both medians and the ratio
(target >= 0.8).

    python benchmarks/download.py [--mib 512] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.images.download import Downloader


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the comparison (Debian package curl)")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        block = os.urandom(1 << 20)
        with (root / "image.bin").open("wb") as f:
            for _ in range(args.mib):
                f.write(block)
        handler = functools.partial(Quiet, directory=str(root))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/image.bin"
        ours, curl = [], []
        for _ in range(args.runs):
            part = root / "ours.part"
            part.unlink(missing_ok=True)
            t = time.perf_counter()
            Downloader(insecure=True).fetch([url], part)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", str(root / "curl.bin"), url], check=True)
            curl.append(time.perf_counter() - t)
        httpd.shutdown()
    mb = args.mib * (1 << 20) / 1e6
    o, c = mb / statistics.median(ours), mb / statistics.median(curl)
    print(f"{args.mib} MiB over loopback: harness {o:.0f} MB/s (streams, hashes sha256 and "
          f"sha512), curl -o {c:.0f} MB/s")
    print(f"ratio {o / c:.2f} (target >= 0.8: {'met' if o / c >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
