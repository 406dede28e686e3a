"""Killing one rank of a running `mpirun -np 2` job ends the whole job with an error naming the rank, within 60 s."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, f"{d}/run")
job = subprocess.Popen(["mpirun", "-np", "2", TERN, "train", cfg, "--set", "train.max_steps=100000",
                        "--set", "train.log_every=1", "--set", "train.threads=1", "--no-progress"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
# Wait until training runs, then kill one rank (any rank will do).
wait_for_metrics(f"{d}/run")
pids = rank_pids(f"tern train {cfg}", job.pid)
check(len(pids) == 2, f"two tern ranks running ({pids})")
t0 = time.time()
os.kill(max(pids), signal.SIGKILL)
out = wait_job(job)
elapsed = time.time() - t0
print(out[-1500:])
check(job.returncode != 0, f"job exit code is non-zero ({job.returncode})")
check(elapsed < 60, f"job ended {elapsed:.1f} s after the kill")
check("exited on signal 9" in out and "rank" in out, "the message names the failed rank")

# A rank that hangs (SIGSTOP) instead of dying: the other rank's collective times out after distributed.timeout_s,
# it reports that with every rank's last heartbeat and exits, and the launcher ends the job.
job = subprocess.Popen(["mpirun", "-np", "2", TERN, "train", cfg, "--set", "train.max_steps=100000",
                        "--set", "train.log_every=1", "--set", "train.threads=1", "--set", f"train.run_dir={d}/hang",
                        "--set", "distributed.timeout_s=5", "--no-progress"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
wait_for_metrics(f"{d}/hang")
pids = rank_pids(f"train.run_dir={d}/hang", job.pid)
t0 = time.time()
os.kill(max(pids), signal.SIGSTOP)
out = wait_job(job)
elapsed = time.time() - t0
print(out[-1200:])
check(job.returncode != 0 and elapsed < 60, f"hung rank: job ended with exit {job.returncode} after {elapsed:.1f} s")
check("did not complete within distributed.timeout_s = 5 s" in out, "hung rank: the timeout is reported")
# Hang diagnosis: the waiting rank lists every rank's heartbeat; the stopped one is named with its pid. (When mpirun
# tears the job down it sends SIGCONT before killing, so the stopped rank may print a second, later report.)
lines = out.splitlines()
first = next((i for i, l in enumerate(lines) if "what every rank was doing" in l), None)
report = lines[first + 1:first + 3] if first is not None else []
stopped = [l for l in report if "STOPPED: last heartbeat" in l]
waiting = [l for l in report if "waiting in all-reduce #" in l]
check(len(stopped) == 1 and f"pid {max(pids)})" in stopped[0] and len(waiting) == 1,
      f"hung rank: the diagnosis names the stopped rank and the waiting one ({report})")
for p in pids:
    try:
        os.kill(p, signal.SIGKILL)
    except ProcessLookupError:
        pass
finish()
