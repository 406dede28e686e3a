"""A real SLURM job: `sbatch launch/slurm/train.sbatch` on a private one-node cluster started here (slurmctld +
slurmd, auth/none, its own ports and spool), two ranks launched by `srun --mpi=pmix`. The job gets SIGUSR1 as SLURM's
`--signal` would send it, saves a checkpoint, exits 75, requeues itself and resumes; the finished job's per-step
losses and final parameters equal an uninterrupted one-process run on the same global batch. Then
`launch/slurm/evaluate.sbatch` evaluates the run as a second batch job."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

SKIP = 77
TERN_SOURCE = os.environ.get("TERN_SOURCE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
missing = [b for b in ["slurmctld", "slurmd", "sbatch", "srun", "scontrol", "squeue"] if not shutil.which(b)]
if missing:
    print(f"SKIP: SLURM is not installed ({', '.join(missing)} missing; scripts/setup.sh installs slurmctld, slurmd and "
          "slurm-client)")
    sys.exit(SKIP)
if os.geteuid() != 0:
    print("SKIP: a private slurmd must run as root to start job steps")
    sys.exit(SKIP)


d = tempdir()
host = socket.gethostname().split(".")[0]
conf = f"{d}/slurm.conf"
slurm_conf(conf, d, f"{host}(127.0.0.1)",
           f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=1000 State=UNKNOWN",
           partition_extra="OverSubscribe=FORCE:2")
os.makedirs(f"{d}/slurmd_{host}")
env = {**os.environ, "SLURM_CONF": conf}
daemons = [subprocess.Popen(["slurmctld", "-D", "-i", "-f", conf], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT),
           subprocess.Popen(["slurmd", "-D", "-f", conf, "-N", host], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)]


def slurm(*args, check_rc=True):
    p = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=60)
    if check_rc and p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout.strip()


def job_field(job, name):
    out = slurm("scontrol", "show", "job", job, check_rc=False)
    for word in out.split():
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return ""


def logs():
    for name in ["slurmctld.log", f"slurmd_{host}.log"]:
        if os.path.exists(f"{d}/{name}"):
            print(f"--- {name}\n" + open(f"{d}/{name}").read()[-2000:])


try:
    deadline = time.time() + 60
    while slurm("sinfo", "-h", "-o", "%T", check_rc=False) != "idle" and time.time() < deadline:
        time.sleep(0.5)
    state = slurm("sinfo", "-h", "-o", "%T", check_rc=False)
    if state != "idle":
        logs()
    check(state == "idle", f"private SLURM cluster is up (node {host}: {state!r})")

    corpus = make_corpus(d, n=600)
    # Big enough that a step takes some milliseconds, so the signal reaches the job mid-run.
    cfg_text = (TINY_CONFIG.replace("embedding: 32, hidden: 32", "embedding: 96, hidden: 96")
                .replace("max_steps: 30, log_every: 5", "max_steps: 80, log_every: 1"))
    cfg = tiny_config(d, corpus, f"{d}/unused", text=cfg_text)
    sets = ["--set", "data.shards=2", "--set", "train.threads=1", "--no-progress"]
    run(["train", cfg, "--set", f"train.run_dir={d}/one", *sets])

    # Without train.threads or OMP_NUM_THREADS, each rank takes its share of the node's cores (srun sets no
    # OMPI_* variables: the count comes from MPI's node-local communicator).
    p = subprocess.run(["srun", "-n", "2", "--mpi=pmix", "env", "-u", "OMP_NUM_THREADS", TERN, "train", cfg,
                        "--set", f"train.run_dir={d}/threads", "--set", "train.max_steps=1", "--set", "data.shards=2",
                        "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    share = max(1, min(len(os.sched_getaffinity(0)), os.cpu_count() // 2))
    check(p.returncode == 0 and f"2 rank(s), backend mpi (overlap on, 1 bucket(s)), {share} thread(s) per rank" in p.stderr,
          f"srun: 2 ranks share the {os.cpu_count()} cores, {share} thread(s) each ({p.stderr.strip()[-300:]!r})")

    job = slurm("sbatch", "--parsable", f"--chdir={TERN_SOURCE}", "--nodes=1", "--ntasks-per-node=2",
                "--cpus-per-task=1", "--gpus-per-node=0", f"--output={d}/job-%j.log",
                f"{TERN_SOURCE}/launch/slurm/train.sbatch", cfg, "--set", f"train.run_dir={d}/job", *sets)
    check(wait_for_metrics(f"{d}/job", lines=10), "the job trains (10 steps logged)")
    # What SLURM's --signal=USR1@300 does before the time limit: SIGUSR1 to every task of the job's steps.
    slurm("scancel", "--signal=USR1", job)
    deadline = time.time() + 60
    while job_field(job, "Restarts") != "1" and time.time() < deadline:
        time.sleep(0.5)
    check(job_field(job, "Restarts") == "1", "the job requeued itself after the pre-emption checkpoint")
    # SLURM holds a requeued job for 120 s (BeginTime); the test shortens that to 3 s. (Not to 0: slurmd refuses a
    # launch in the same second as the first run's end with "Job credential revoked".)
    final = f"{d}/job/ckpt_step00000080.tern"
    released = False
    deadline = time.time() + 180
    while time.time() < deadline:
        state = job_field(job, "JobState")
        if state == "PENDING" and not released:
            slurm("scontrol", "update", f"JobId={job}", "StartTime=now+3")
            released = True
        elif released and (state in ("FAILED", "CANCELLED", "TIMEOUT") or (state == "COMPLETED" and os.path.exists(final))):
            break
        time.sleep(0.5)
    state, code = job_field(job, "JobState"), job_field(job, "ExitCode")
    log = open(f"{d}/job-{job}.log").read()
    if state != "COMPLETED" or not os.path.exists(final):
        print(log[-3000:])
        logs()
    check(state == "COMPLETED" and code == "0:0", f"the requeued job completes (state {state}, exit {code})")
    check("2 rank(s), backend mpi" in log and "[rank 1/2]" in log, "srun --mpi=pmix started two MPI ranks")
    check("pre-emption signal received (signal 10)" in log and f"requeueing job {job}" in log,
          "SIGUSR1 saved a checkpoint and the batch script requeued the job")
    resumed = [l for l in log.splitlines() if "[rank 0/2] resumed from" in l]
    check(len(resumed) == 1, f"the second run resumed from the checkpoint ({resumed})")

    one = {x["step"]: x["train_loss"] for x in metrics(f"{d}/one") if "train_loss" in x}
    two = [(x["step"], x["train_loss"]) for x in metrics(f"{d}/job") if "train_loss" in x]
    steps = [s for s, _ in two]
    check(steps == list(range(1, 81)), f"every step logged once across the two runs ({len(steps)} lines)")
    worst = max(abs(one[s] - loss) for s, loss in two)
    check(worst < 1e-5, f"per-step losses equal the uninterrupted one-process run (max difference {worst:.3g})")
    diff = subprocess.run([CKPT_DIFF, f"{d}/one/ckpt_step00000080.tern", f"{d}/job/ckpt_step00000080.tern"],
                          capture_output=True, text=True)
    check(diff.returncode == 0 and float(diff.stdout) < 1e-5,
          f"final parameters equal the uninterrupted run (max difference {diff.stdout.strip()})")
    # Offline evaluation as a batch job afterwards (launch/slurm/evaluate.sbatch; a CPU job here). Two tasks in the
    # allocation: the batch script's own step is one process, so tern evaluate runs (it is refused under srun -n 2).
    p = subprocess.run(["sbatch", "--wait", f"--chdir={TERN_SOURCE}", "--gpus=0", "--ntasks=2",
                        f"--output={d}/eval-%j.log",
                        f"{TERN_SOURCE}/launch/slurm/evaluate.sbatch", f"{d}/job", corpus],
                       env=env, capture_output=True, text=True, timeout=300)
    ok = p.returncode == 0 and os.path.exists(f"{d}/job/test_eval.json")
    report = json.load(open(f"{d}/job/test_eval.json")) if ok else {}
    check(ok and report["perplexity"]["ppl_per_token"] > 1 and "signature" in report.get("bleu", {}),
          f"evaluate.sbatch writes perplexity and BLEU of the best checkpoint ({p.stderr.strip()[-200:]!r})")
    # Under srun with two tasks, a one-process command is refused (each task would translate everything).
    p = subprocess.run(["srun", "--partition=test", "--ntasks=2", "--mpi=pmix", TERN, "translate", "--checkpoint",
                        f"{d}/job/best.tern"], env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    check(p.returncode == 2 and "tern translate runs in one process, but a launcher (mpirun, srun) started 2" in p.stderr,
          f"srun -n 2 tern translate is refused ({p.returncode}, {p.stderr.strip()[-200:]!r})")
finally:
    subprocess.run(["scancel", "--full", "--partition=test"], env=env, capture_output=True)
    for p in daemons:
        p.terminate()
    for p in daemons:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
shutil.rmtree(d, ignore_errors=True)
finish()
