"""A slow link between two hosts (tc tbf: 1 Gbit/s, burst 32 kbit, latency 400 ms; this kernel has no netem):
2 hosts x 2 ranks train to the end, with the overlapped all-reduce (run by the communication thread) giving per-step
losses and parameters bitwise equal to the all-reduce after backward; and `tern bench train` across the hosts
reports the exposed communication, the share of the all-reduce hidden behind backward, and buckets launched during
backward."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403
from netns_cluster import Cluster  # noqa: E402

Cluster.skip_unless_able()

d = tempdir()
corpus = make_corpus(d, n=600)
cfg_text = TINY_CONFIG.replace("max_steps: 30, log_every: 5", "max_steps: 8, log_every: 1")
cfg = tiny_config(d, corpus, "RUNDIR", text=cfg_text.replace("RUN", "RUNDIR"))
sets = ["--set", "data.shards=4", "--set", "train.threads=1", "--set", "distributed.bucket_mb=1", "--no-progress"]
source = os.environ.get("TERN_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
with Cluster(2) as c:
    c.slow_link(1)
    for overlap in ("true", "false"):
        job = c.mpirun(2, [TERN, "train", cfg, "--set", f"train.run_dir={d}/overlap_{overlap}",
                           "--set", f"distributed.overlap={overlap}", *sets],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = wait_job(job, timeout=240)
        check(job.returncode == 0 and f"overlap {'on' if overlap == 'true' else 'off'}" in out,
              f"training over the slow link completes with distributed.overlap={overlap} (exit {job.returncode})")
    # One rank a host, so that the two ranks' compute does not share a host's shared-memory transport.
    job = c.mpirun(1, [TERN, "bench", "train", os.path.join(source, "configs", "bench_overlap.yaml"), "--batch", "16",
                       "--src-len", "20", "--tgt-len", "20", "--src-vocab", "2000", "--tgt-vocab", "2000",
                       "--steps", "4", "--warmup", "1", "--json", f"{d}/bench.json"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = wait_job(job, timeout=400)
print(out[-1200:])
on = [x["train_loss"] for x in metrics(f"{d}/overlap_true") if "train_loss" in x]
off = [x["train_loss"] for x in metrics(f"{d}/overlap_false") if "train_loss" in x]
check(len(on) == 8 and on == off, f"overlap on and off: identical per-step losses ({len(on)} steps)")
diff = subprocess.run([CKPT_DIFF, f"{d}/overlap_true/ckpt_step00000008.tern", f"{d}/overlap_false/ckpt_step00000008.tern"],
                      capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) == 0.0, f"and identical parameters ({diff.stdout.strip()})")
check(job.returncode == 0, f"bench train across the slow link runs (exit {job.returncode})")
rows = json.load(open(f"{d}/bench.json"))
r = rows[0] if isinstance(rows, list) else rows
comm, exposed = r["communication_after_backward_ms"], r["breakdown_ms"]["exposed_communication"]
hidden = r["hidden_communication_share"]
print(f"all-reduce after backward {comm:.0f} ms, exposed when overlapped {exposed:.0f} ms, hidden {100 * hidden:.0f}%")
# Overlap that stopped working shows here deterministically: no bucket would be launched before backward ends.
check(r["ranks"] == 2 and r["buckets_started_during_backward"] > 1, "buckets start during backward on both hosts")
check(comm > 0 and exposed >= 0, "the bench reports the all-reduce time and the exposed communication")
# The hidden share is a timing, not asserted here (CI measured 29% on a loaded 2-core machine, a quiet one ~70-75%):
# bench/multi_node_overlap.py is the benchmark that reports it.
finish()
