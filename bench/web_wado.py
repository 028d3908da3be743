"""WADO-RS retrieval alone, for a quick re-measure of one ratio of
bench/web_side_by_side.py without Orthanc: `obscura serve`'s archive
(release build, encrypted objects) is filled with the corpus by STOW-RS,
then every instance is retrieved by its own request by curl at concurrency
C, each run alternated with the same curl reading the same files from disk
(`file://`, page cache warm). Prints each run (MB/s, ratio, the server's CPU
seconds for the run, load average) and the median ratio.

Usage: python3 bench/web_wado.py [CORPUS_DIR] [CONCURRENCY] [REPS]
(defaults /tmp/bench-corpus/ct-series 8 5; after `cargo build --release -p obscura-cli`).
"""
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web_common import BINARY  # noqa: E402
from web_side_by_side import ACCEPT, ObscuraServer, corpus_uids, curl, curl_config, stow  # noqa: E402


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-corpus/ct-series")
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    files, uids = corpus_uids(corpus)
    size = sum(p.stat().st_size for p in files)
    work = Path(tempfile.mkdtemp(prefix="obscura-web-wado-", dir=os.environ.get("BENCH_DIR")))
    disk = curl_config(work / "disk.curl", [], [f"file://{p}" for p in files])
    curl(disk, concurrency)  # page cache warm
    ratios = []
    print(f"Corpus: {len(files)} files, {size / 1e6:.0f} MB ({corpus}); curl at concurrency {concurrency}, "
          f"{reps} runs alternated with curl reading the files; {os.cpu_count()} CPUs\n")
    print("| run | WADO MB/s | disk MB/s | WADO / disk | server CPU s | load |")
    print("|---|---|---|---|---|---|")
    with ObscuraServer("Obscura", BINARY, work / "srv") as srv:
        stow(srv, files, 50)
        config = curl_config(work / "wado.curl", srv.headers + [f"Accept: {ACCEPT}"],
                             [f"{srv.base}/studies/{a}/series/{b}/instances/{c}" for a, b, c in uids])
        for run in range(1, reps + 1):
            before = cpu_seconds(srv.pid())
            wado = curl(config, concurrency)
            spent = cpu_seconds(srv.pid()) - before
            from_disk = curl(disk, concurrency)
            ratios.append(from_disk / wado)
            print(f"| {run} | {size / wado / 1e6:.0f} | {size / from_disk / 1e6:.0f} | {from_disk / wado:.2f}x "
                  f"| {spent:.2f} | {os.getloadavg()[0]:.1f} |")
    subprocess.run(["rm", "-rf", str(work)])
    print(f"\nMedian WADO / disk: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
