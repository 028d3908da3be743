"""WADO-RS retrieval alone, for a quick re-measure of one ratio of
bench/web_side_by_side.py without Orthanc: `obscura serve`'s archive
(release build, encrypted objects) is filled with the corpus by STOW-RS,
then every instance is retrieved by its own request, each run alternated
with reading the same files from disk (`file://`). Both sides run the same
way: C curl processes started together, process i fetching URLs i, i + C,
i + 2C, ... one at a time (one transfer in flight per process, so C in
flight on each side), output to /dev/null. (One curl with `--parallel`
would not do: curl reads `file://` URLs synchronously in its one thread,
so the disk side would read one file at a time while WADO had C requests
in flight.)

Two conditions, each REPS alternated pairs:
- warm: the page cache holds the corpus and the archive's objects;
- cold: before every run the corpus files (disk side) or the archive's
  object files (WADO side) are evicted from the page cache with
  posix_fadvise(POSIX_FADV_DONTNEED) (no root needed; the index stays
  cached), so both sides read the disk.

Prints each run (MB/s, ratio, the server's and curl's CPU seconds for the
run, load average), then one line with the median ratio of each condition.

Usage: python3 bench/web_wado.py [CORPUS_DIR] [CONCURRENCY] [REPS] [CONDITIONS]
(defaults /tmp/bench-corpus/ct-series 8 5 warm,cold; after
`cargo build --release -p obscura-cli`).
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web_common import BINARY  # noqa: E402
from web_side_by_side import ACCEPT, ObscuraServer, corpus_uids, curl_config, stow  # noqa: E402


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    """User + system CPU seconds of this script's finished children (curl)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def evict(paths):
    """Drop `paths` from the page cache (they are clean: written and fsync'd)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def readers(work, name, headers, urls, concurrency):
    """C curl config files, reader i getting URLs i, i + C, i + 2C, ..."""
    return [curl_config(work / f"{name}-{i}.curl", headers, urls[i::concurrency]) for i in range(concurrency)]


def curl_all(configs):
    """Run one curl per config file, all at once, each fetching its URLs one
    at a time; the seconds until the last one ends."""
    t = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sS", "--no-progress-meter", "--fail", "-K", str(c)]) for c in configs]
    codes = [p.wait() for p in procs]
    secs = time.perf_counter() - t
    if any(codes):
        raise SystemExit(f"curl failed: exit statuses {codes}")
    return secs


def timed(configs, cold_paths, pid=None):
    """One pass: (seconds, curl CPU seconds, server CPU seconds)."""
    if cold_paths is not None:
        evict(cold_paths)
    before = (children_cpu(), cpu_seconds(pid) if pid else 0.0)
    secs = curl_all(configs)
    return secs, children_cpu() - before[0], (cpu_seconds(pid) - before[1]) if pid else 0.0


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-corpus/ct-series")
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    conditions = (sys.argv[4] if len(sys.argv) > 4 else "warm,cold").split(",")
    files, uids = corpus_uids(corpus)
    size = sum(p.stat().st_size for p in files)
    work = Path(tempfile.mkdtemp(prefix="obscura-web-wado-", dir=os.environ.get("BENCH_DIR")))
    disk = readers(work, "disk", [], [f"file://{p}" for p in files], concurrency)
    ratios = {c: [] for c in conditions}
    print(f"Corpus: {len(files)} files, {size / 1e6:.0f} MB ({corpus}); curl at concurrency {concurrency}, "
          f"{reps} runs per condition alternated with curl reading the files, {concurrency} curl processes "
          f"on each side; {os.cpu_count()} CPUs\n")
    print("| condition | run | WADO MB/s | disk MB/s | WADO / disk | server CPU s | curl CPU s WADO / disk | load |")
    print("|---|---|---|---|---|---|---|---|")
    with ObscuraServer("Obscura", BINARY, work / "srv") as srv:
        stow(srv, files, 50)
        objects = [p for p in (srv.work / "archive" / "objects").rglob("*") if p.is_file()]
        config = readers(work, "wado", srv.headers + [f"Accept: {ACCEPT}"],
                         [f"{srv.base}/studies/{a}/series/{b}/instances/{c}" for a, b, c in uids], concurrency)
        curl_all(config)  # first requests warm the server's caches and the page cache
        curl_all(disk)
        for cond in conditions:
            cold = cond == "cold"
            for run in range(1, reps + 1):
                wado, wado_cpu, spent = timed(config, objects if cold else None, srv.pid())
                from_disk, disk_cpu, _ = timed(disk, files if cold else None)
                ratios[cond].append(from_disk / wado)
                print(f"| {cond} | {run} | {size / wado / 1e6:.0f} | {size / from_disk / 1e6:.0f} "
                      f"| {from_disk / wado:.2f}x | {spent:.2f} | {wado_cpu:.2f} / {disk_cpu:.2f} "
                      f"| {os.getloadavg()[0]:.1f} |")
    subprocess.run(["rm", "-rf", str(work)])
    print("\nWADO / disk, median of {} alternated runs, {} readers each side, load {:.1f}: {}".format(
        reps, concurrency, os.getloadavg()[0], ", ".join(f"{c} {statistics.median(r):.2f}x" for c, r in ratios.items())))


if __name__ == "__main__":
    main()
