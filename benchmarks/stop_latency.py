"""How long `sweep run`, `sweep worker` and `sweep ui` take to stop after SIGINT or SIGTERM,
sent at moments spread over their start-up, training, MLflow writes and shutdown (target:
within 10 s, exit code 2, "interrupted", nothing RUNNING). Measured, not asserted by the
tests (they only guard against hangs).

    python benchmarks/stop_latency.py [--moments 12] [--storage postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SPEC = """
name = "stop"
datasets = ["circle", "xor"]
trials = 12
jobs = 2
stack = 2
[train]
epochs = 400
batch_size = 10
[search]
learning_rate = { low = 0.01, high = 1.0, log = true }
hidden_units = { low = 2, high = 6 }
[sampler]
name = "random"
[pruner]
name = "none"
"""


def _running(url: str) -> int:
    from optuna.trial import TrialState

    from studies.storage.opening import open_storage

    if "://" not in url and not os.path.exists(url):
        return 0
    storage = open_storage(url, checked=True)
    return sum(
        t.state == TrialState.RUNNING
        for s in storage.get_all_studies()
        for t in storage.get_all_trials(s.study_name and storage.get_study_id_from_name(s.study_name))
    )


def _stop(cmd: list[str], folder: str, delay: float, sig: int, ready: str | None = None) -> tuple[float, int, str]:
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ready:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(ready, timeout=1).status < 500:
                    break
            except OSError:
                time.sleep(0.2)
    time.sleep(delay)
    sent = time.perf_counter()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return time.perf_counter() - sent, proc.returncode, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, default=12)
    parser.add_argument("--storage", default=None)
    args = parser.parse_args()
    rng = random.Random(0)
    rows = []
    for i in range(args.moments):
        sig = [signal.SIGINT, signal.SIGTERM][i % 2]
        delay = rng.uniform(0.0, 8.0)
        with tempfile.TemporaryDirectory(prefix="sweeps-stop-") as d:
            with open(os.path.join(d, "stop.toml"), "w") as f:
                f.write(SPEC)
            url = args.storage or os.path.join(d, "sweeps.journal")
            took, code, err = _stop(
                [sys.executable, "-m", "sweeps", "run", "stop.toml", "--storage", url], d, delay, sig
            )
            ok = code == 0 or (code == 2 and "interrupted" in err and "Traceback" not in err) or code == -sig
            rows.append(("run", delay, sig, took, code, ok and _running(url) == 0))
            print(
                f"  run    at {delay:4.1f} s {signal.Signals(sig).name:7}: stopped in {took:5.2f} s, exit {code}, "
                f"{'clean' if rows[-1][-1] else 'NOT CLEAN'}",
                flush=True,
            )
    with tempfile.TemporaryDirectory(prefix="sweeps-stop-") as d:  # sweep worker, on a sweep that has work left
        with open(os.path.join(d, "stop.toml"), "w") as f:
            f.write(SPEC.replace("trials = 12", "trials = 400"))
        url = args.storage or os.path.join(d, "sweeps.journal")
        _stop(
            [sys.executable, "-m", "sweeps", "run", "stop.toml", "--storage", url, "--no-mlflow"], d, 3.0, signal.SIGINT
        )
        for i in range(4):
            sig = [signal.SIGINT, signal.SIGTERM][i % 2]
            delay = rng.uniform(0.0, 6.0)
            took, code, err = _stop([sys.executable, "-m", "sweeps", "worker", "stop", "--storage", url], d, delay, sig)
            rows.append(
                ("worker", delay, sig, took, code, code in (2, -sig) and "Traceback" not in err and _running(url) == 0)
            )
            print(
                f"  worker at {delay:4.1f} s {signal.Signals(sig).name:7}: stopped in {took:5.2f} s, exit {code}",
                flush=True,
            )
    with tempfile.TemporaryDirectory(prefix="sweeps-stop-") as d:
        for i in range(3):
            took, code, err = _stop(
                [sys.executable, "-m", "sweeps", "ui", "--port", str(5700 + i)],
                d,
                0.5,
                [signal.SIGINT, signal.SIGTERM][i % 2],
                ready=f"http://127.0.0.1:{5700 + i}/health",
            )
            rows.append(("ui", 0.5, 0, took, code, code == 0 and "Stopped" in err))
            print(f"  ui: stopped in {took:5.2f} s, exit {code}", flush=True)
    times = [r[3] for r in rows]
    print(
        f"\nstop latency over {len(rows)} stops: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
        f"(target <= 10 s); clean: {sum(r[-1] for r in rows)}/{len(rows)}"
    )


if __name__ == "__main__":
    main()
