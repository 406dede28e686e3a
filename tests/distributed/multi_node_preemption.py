"""Pre-emption across hosts: SIGUSR1 to the ranks of one host only (what a node's scheduler does); every rank on both
hosts agrees at the next step boundary, the checkpoint is saved, the job exits 75, and `--resume` on the two hosts
continues exactly: per-step losses and final parameters equal an uninterrupted 1-rank run on the same global batch."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403
from netns_cluster import Cluster  # noqa: E402

Cluster.skip_unless_able()

d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, f"{d}/run")
sets = ["--set", "data.shards=4", "--set", "train.threads=1", "--set", "train.log_every=1", "--set",
        "train.valid_every=0", "--no-progress"]
with Cluster(2) as c:
    job = c.mpirun(2, [TERN, "train", cfg, "--set", "train.max_steps=100000", "--set", "train.save_every=0", *sets],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(wait_for_metrics(f"{d}/run", 3, timeout=180), "training started on 2 hosts")
    ranks = c.pids(1, f"train {cfg}")
    check(len(ranks) == 2, f"host 1 runs two ranks ({ranks})")
    for pid in ranks:
        os.kill(pid, signal.SIGUSR1)
    out = wait_job(job, timeout=90)
    print(out[-1500:])
    check(job.returncode == 75, f"the job exits 75 (got {job.returncode})")
    check("checkpoint saved at step" in out, "rank 0, on the other host, reports the checkpoint")
    latest = open(f"{d}/run/latest").read().strip()
    step = int(latest[len("ckpt_step"):-len(".tern")])
    job = c.mpirun(2, [TERN, "train", cfg, "--set", f"train.max_steps={step + 4}", "--resume", *sets],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = wait_job(job, timeout=180)
check(job.returncode == 0 and f"resumed from {d}/run/{latest} at step {step}" in out,
      f"--resume on the two hosts continues from step {step} (exit {job.returncode})")
run(["train", cfg, "--set", f"train.run_dir={d}/one", "--set", f"train.max_steps={step + 4}",
     "--set", "train.save_every=0", *sets])
check_same_training(f"{d}/run", f"{d}/one", steps=step + 4)
finish()
