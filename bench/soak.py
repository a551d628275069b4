"""The soak benchmark: one worker against steady simulated traffic for N minutes, on the real
stack. It samples the worker's RSS, Redis's used memory and the consumer lag, and prints them
at the start (after a warm-up) and at the end, with a least-squares slope per hour, as one
JSON line. A benchmark, not a test: nothing here is asserted.

What "flat" can mean here: the worker's RSS should be flat once its caches are warm. Redis
keeps growing while new buyers arrive, because every buyer state lives for 29 days plus the
after-sale look-back (docs/redis-layout.md); minute and second buckets stop growing after an
hour (FINE_RETENTION_MS).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.pipeline import KEFU, ROOT, Run, free_port, log, stack

WARM_UP_S = 60.0
_LAG = re.compile(r"^kefu_consumer_lag\{[^}]*\} ([0-9.e+]+)$", re.M)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def lag(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return sum(float(v) for v in _LAG.findall(response.read().decode()))


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var * 3600 if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second offered")
    parser.add_argument("--sample-seconds", type=float, default=15.0)
    args = parser.parse_args()
    bootstrap, redis_url = stack()
    run = Run(bootstrap, redis_url, events=0)
    subprocess.run([str(KEFU), "topics", "create"], env=run.env(), check=True, capture_output=True)
    port = free_port()
    worker_log = (run.tmp / "worker.log").open("wb")
    worker = subprocess.Popen(
        [str(KEFU), "worker", "-l", "warn"],
        env=run.env(KEFU_WEB_PORT=str(port)),
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        cwd=run.tmp,
        start_new_session=True,
    )
    seconds = args.minutes * 60
    traffic = subprocess.Popen(
        [
            str(KEFU),
            "simulate",
            "--shops",
            "4",
            "--agents",
            "15",
            "--rate",
            str(args.rate),
            "--seed",
            "5",
            "--duration",
            str(seconds + WARM_UP_S),
        ],
        env=run.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=run.tmp,
        start_new_session=True,
    )
    rss: list[tuple[float, float]] = []
    redis_mb: list[tuple[float, float]] = []
    lags: list[tuple[float, float]] = []
    try:
        log(f"soak: {args.minutes:g} min at {args.rate:g} events/s after {WARM_UP_S:g} s of warm-up")
        time.sleep(WARM_UP_S)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            memory = int(run.redis.info("memory")["used_memory"]) / 2**20
            rss.append((elapsed, rss_mb(worker.pid)))
            redis_mb.append((elapsed, memory))
            lags.append((elapsed, lag(port)))
            if len(rss) % 8 == 1:
                now = f"rss {rss[-1][1]:.0f} MiB, redis {memory:.0f} MiB, lag {lags[-1][1]:.0f}"
                log(f"{elapsed / 60:5.1f} min: {now}")
            time.sleep(args.sample_seconds)
    finally:
        for proc in (traffic, worker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (traffic, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        worker_log.close()
    applied = sum(int(v) + 1 for v in run.redis.mget(run.redis.keys("kp:{p*}:off:*")) if v is not None)

    def figures(samples: list[tuple[float, float]]) -> dict[str, float]:
        return {
            "start": round(samples[0][1], 1),
            "end": round(samples[-1][1], 1),
            "slope_per_hour": round(slope_per_hour(samples), 1),
            # Caches and the rolling windows fill during the first half; flat means this is ~0.
            "slope_per_hour_second_half": round(slope_per_hour(samples[len(samples) // 2 :]), 1),
        }

    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "rate_offered": args.rate,
                "samples": len(rss),
                "worker_rss_mib": figures(rss),
                "redis_used_mib": figures(redis_mb),
                "consumer_lag_records": figures(lags) | {"max": max(v for _, v in lags)},
                "records_applied": applied,
                "root": str(ROOT),
            }
        )
    )


if __name__ == "__main__":
    main()
