"""Pre-emption: a real signal to a running `mpirun -np 2` job (SIGUSR1, forwarded by mpirun to every rank) and
SIGTERM to a single rank (what SLURM does to each task). All ranks agree at the next step boundary, save, exit 75;
`--resume` then continues from that checkpoint to the end."""
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


def start(run_dir):
    return subprocess.Popen(["mpirun", "-np", "2", TERN, "train", cfg, "--set", f"train.run_dir={run_dir}",
                             "--set", "train.max_steps=100000", "--set", "train.save_every=0", "--set", "train.valid_every=0",
                             "--set", "train.log_every=1", "--set", "train.threads=1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


for how in ("SIGUSR1 to mpirun", "SIGTERM to one rank"):
    run_dir = f"{d}/{how.split()[0]}"
    job = start(run_dir)
    check(wait_for_metrics(run_dir, 3), f"{how}: training started")
    if how.startswith("SIGUSR1"):
        job.send_signal(signal.SIGUSR1)
    else:
        os.kill(max(rank_pids(f"train.run_dir={run_dir}", job.pid)), signal.SIGTERM)
    out = wait_job(job, timeout=60)
    check(job.returncode == 75, f"{how}: job exits 75 (got {job.returncode})")
    check("checkpoint saved at step" in out, f"{how}: rank 0 reports the checkpoint")
    latest = open(f"{run_dir}/latest").read().strip()
    step = int(latest[len("ckpt_step"):-len(".tern")])
    p = subprocess.run(["mpirun", "-np", "2", TERN, "train", cfg, "--set", f"train.run_dir={run_dir}",
                        "--set", f"train.max_steps={step + 3}", "--set", "train.threads=1", "--set", "train.log_every=1",
                        "--resume", "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and f"resumed from {run_dir}/{latest} at step {step}" in p.stderr,
          f"{how}: resume continues from step {step}")
    steps = [x["step"] for x in metrics(run_dir) if "train_loss" in x]
    check(steps == list(range(1, step + 4)), f"{how}: every step logged once across the two runs")
# Which signals pre-empt is configurable: here SIGHUP alone, sent to a single process.
run_dir = f"{d}/hup"
job = subprocess.Popen([TERN, "train", cfg, "--set", f"train.run_dir={run_dir}", "--set", "train.max_steps=100000",
                        "--set", "train.log_every=1", "--set", "train.preempt_signals=HUP", "--no-progress"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(wait_for_metrics(run_dir, 2), "HUP: training started")
job.send_signal(signal.SIGHUP)
out = wait_job(job, timeout=60)
check(job.returncode == 75 and "(signal 1)" in out, f"train.preempt_signals=HUP: SIGHUP saves and exits 75 ({job.returncode})")
p = run(["train", cfg, "--set", "train.preempt_signals=TERM,KILL"], expect=2)
check("train.preempt_signals must list signals among TERM, USR1, USR2, INT, HUP (unknown 'KILL')" in p.stderr,
      "an unknown signal name is a config error")
finish()
