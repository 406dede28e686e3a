"""Pre-emption: a real signal to a running `mpirun -np 2` job (SIGUSR1, forwarded by mpirun to every rank) and
SIGTERM to a single rank (what SLURM does to each task). All ranks agree at the next step boundary, save, exit 75;
`--resume` then continues from that checkpoint to the end. A signal during a validation stops it: the checkpoint is
saved at once and the resume runs that validation first (equal to an uninterrupted run)."""
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
# A signal during a long validation (BLEU with beam 12 over 3,600 valid sentences): the checkpoint is saved at once, not
# after the validation (which could outlast the scheduler's grace time before SIGKILL), marked so that the resume runs
# that validation first; the resumed run equals an uninterrupted one (losses, parameters, validations, best.tern).
src, tgt = synthetic_parallel(8000, seed=5)
write(f"{d}/v.en", src), write(f"{d}/v.es", tgt)
run(["prepare", "--train-src", f"{d}/v.en", "--train-tgt", f"{d}/v.es", "--valid-fraction", "0.45", "--vocab-size", "60",
     "--out", f"{d}/v.h5"])
vsets = ["--set", f"data.corpus={d}/v.h5", "--set", "train.max_steps=4", "--set", "train.valid_every=2", "--set",
         "train.save_every=2", "--set", "train.valid_beam=12", "--set", "train.log_every=1", "--set", "train.threads=1",
         "--set", "data.shards=2", "--no-progress"]  # two shards: one rank or two train the same global batch
run(["train", cfg, "--set", f"train.run_dir={d}/vref", *vsets], env={"OMP_NUM_THREADS": "1"})
at_step2 = {x["kind"]: x["elapsed_s"] for x in metrics(f"{d}/vref") if x["step"] == 2}
validation_s = at_step2["valid"] - at_step2["train"]  # how long the validation of step 2 took
for how in ("SIGUSR1 to the process", "SIGTERM to both ranks"):  # both: what SLURM does to the tasks of a job
    run_dir = f"{d}/v_{how.split()[0]}"
    ranks = 2 if "both" in how else 1
    args = [TERN, "train", cfg, "--set", f"train.run_dir={run_dir}", *vsets]
    if ranks == 2:
        args = ["mpirun", "-np", "2", *args]
    job = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(wait_for_metrics(run_dir, 2), f"{how}: training reached step 2, whose validation starts")
    time.sleep(min(1.0, validation_s / 4))
    pids = [job.pid] if ranks == 1 else rank_pids(f"train.run_dir={run_dir}", job.pid)
    sent = time.time()
    for pid in pids:
        os.kill(pid, signal.SIGUSR1 if ranks == 1 else signal.SIGTERM)
    out = wait_job(job, timeout=120)
    took = time.time() - sent
    check(job.returncode == 75 and "checkpoint saved at step 2 before its validation" in out,
          f"{how}: exit 75 with the checkpoint of step 2 saved before its validation ({job.returncode}, {out[-300:]!r})")
    check(took < validation_s / 2, f"{how}: saved and exited {took:.1f} s after the signal, without waiting for the "
          f"validation ({validation_s:.1f} s)")
    p = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    check(p.returncode == 0 and "the validation of step 2 was left for the resume by a pre-emption" in p.stderr,
          f"{how}: the resume runs the validation of step 2 first ({p.returncode}, {p.stderr[-300:]!r})")
    valid = lambda r: [(x["step"], x["valid_bleu"], x["valid_loss"]) for x in metrics(r) if "valid_bleu" in x]
    check(valid(run_dir) == valid(f"{d}/vref") and len(valid(run_dir)) == 2,
          f"{how}: the validations equal the uninterrupted run's ({valid(run_dir)} vs {valid(f'{d}/vref')})")
    check_same_training(run_dir, f"{d}/vref", 4, tol=1e-5)
    diff = subprocess.run([CKPT_DIFF, f"{run_dir}/best.tern", f"{d}/vref/best.tern"], capture_output=True, text=True)
    check(diff.returncode == 0 and float(diff.stdout) <= 1e-5, f"{how}: best.tern is the uninterrupted run's")

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
