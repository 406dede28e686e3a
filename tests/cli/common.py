"""Shared helpers for tern's end-to-end tests: run the real binary on small synthetic corpora."""
import atexit
import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

TERN = os.path.abspath(os.environ.get("TERN", "build/cli/tern"))
CKPT_DIFF = os.environ.get("TERN_CKPT_DIFF", "build/tests/tern_ckpt_diff")
WORDS = "the king said unto him and they went into city of god light earth water land people house day night".split()

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    if failures:
        print(f"{len(failures)} check(s) failed: " + "; ".join(failures))
        failures.clear()  # reported once
        sys.exit(1)
    print("all checks passed")


@atexit.register
def _failed_checks_fail_the_test():
    """A test that ends without finish() still exits 1 when a check failed."""
    if failures:
        print(f"{len(failures)} check(s) failed: " + "; ".join(failures), flush=True)
        sys.stdout.flush()
        os._exit(1)


# Sanitizer builds run several times slower: scripts/sanitize.sh scales every command's time limit.
TIMEOUT_SCALE = float(os.environ.get("TERN_TEST_TIMEOUT_SCALE", "1"))


def run(args, expect=0, stdin=None, env=None, timeout=300, cwd=None):
    timeout *= TIMEOUT_SCALE
    t0 = time.time()
    p = subprocess.run([TERN] + args, capture_output=True, text=True, input=stdin, timeout=timeout,
                       env={**os.environ, **(env or {})}, cwd=cwd)
    if expect is not None and p.returncode != expect:
        print(f"command: tern {' '.join(args)}\nexit {p.returncode}\nstdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-3000:]}")
        raise SystemExit(f"unexpected exit code {p.returncode} (wanted {expect})")
    p.seconds = time.time() - t0
    return p


def synthetic_parallel(n, seed=0):
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        src.append(" ".join(words) + " .")
        tgt.append(" ".join("el_" + w + "o" for w in reversed(words)) + " .")
    return src, tgt


def write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in lines))


def make_corpus(d, n=600, vocab=60, extra=()):
    src, tgt = synthetic_parallel(n)
    write(f"{d}/train.en", src)
    write(f"{d}/train.es", tgt)
    run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--valid-fraction", "0.1",
         "--test-fraction", "0.1", "--vocab-size", str(vocab), "--out", f"{d}/c.h5", *extra])
    return f"{d}/c.h5"


def tiny_translation(d, steps=20):
    """A corpus in d, a seq2seq model trained `steps` steps on it, and four source lines in d/in.txt: (corpus,
    checkpoint, lines)."""
    corpus = make_corpus(d, n=600)
    run(["train", tiny_config(d, corpus, f"{d}/run"), "--no-progress", "--set", f"train.max_steps={steps}", "--set",
         "train.valid_every=0"])
    src = ["the king said unto him .", "and they went into the city .", "light", "god of the earth and water ."]
    write(f"{d}/in.txt", src)
    return corpus, f"{d}/run/ckpt_step{steps:08d}.tern", src


TINY_CONFIG = """
model: {cell: lstm, layers: 1, embedding: 32, hidden: 32, dropout: 0.0, attention: general}
data: {corpus: CORPUS, batch_tokens: 400}
optim: {lr: 0.01, schedule: constant, warmup_steps: 0, label_smoothing: 0.0}
train: {run_dir: RUN, max_steps: 30, log_every: 5, valid_every: 10, save_every: 10, seed: 3, device: cpu}
"""


def tern_job(args, ranks=1, timeout=300):
    """`tern ARGS...` under `mpirun -np RANKS` when ranks > 1; the tail of stderr is printed when it fails."""
    cmd = [TERN, *args]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks)] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        print(p.stderr[-2000:])
    return p


def tiny_config(d, corpus, run_dir, text=TINY_CONFIG, name="tiny.yaml"):
    path = f"{d}/{name}"
    with open(path, "w") as f:
        f.write(text.replace("CORPUS", corpus).replace("RUN", run_dir))
    return path


def two_layer_fixture(n=400):
    """A temp dir, a corpus of n pairs, in.txt (its first 5 source lines) and the tiny config with two layers."""
    d = tempdir()
    corpus = make_corpus(d, n=n)
    write(f"{d}/in.txt", [l.rstrip("\n") for l in open(f"{d}/train.en")][:5])
    text = TINY_CONFIG.replace("layers: 1", "layers: 2")
    check(text != TINY_CONFIG, "the tiny config names model.layers")
    return d, corpus, text


def train_variant(d, corpus, text, name, sets, steps=10):
    """`tern train` of the config `text` into d/name for `steps` steps with `--set` of each of `sets`, logging every
    step: the config's path, the arguments (to resume with) and the log."""
    cfg = tiny_config(d, corpus, f"{d}/{name}", text=text, name=f"{name}.yaml")
    args = ["--no-progress", "--set", "train.log_every=1"] + [x for s in sets for x in ("--set", s)]
    p = run(["train", cfg, "--set", f"train.max_steps={steps}"] + args)
    return cfg, args, p.stderr


def check_resumes_bitwise(d, corpus, text, name, sets):
    """train_variant `name` for 10 steps, resumed to 20, equals 20 steps straight (losses and parameters, bitwise);
    the first run's log."""
    cfg, args, log = train_variant(d, corpus, text, name, sets)
    run(["train", cfg, "--resume", "--set", "train.max_steps=20"] + args)
    train_variant(d, corpus, text, f"{name}_straight", sets, steps=20)
    check_same_training(f"{d}/{name}", f"{d}/{name}_straight", 20, tol=0)
    return log


def metrics(run_dir):
    with open(f"{run_dir}/metrics.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]


def wait_for_metrics(run_dir, lines=1, timeout=120):
    """Waits until run_dir/metrics.jsonl has `lines` lines (training is running); returns whether it did."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(f"{run_dir}/metrics.jsonl") and len(open(f"{run_dir}/metrics.jsonl").read().splitlines()) >= lines:
            return True
        time.sleep(0.2)
    return False


def rank_pids(pattern, launcher_pid):
    """PIDs of the tern ranks whose command line contains `pattern` (not the launcher)."""
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if int(p) != launcher_pid]


def wait_job(job, timeout=90):
    """Output of a Popen job, killing it if it outlives `timeout`."""
    try:
        out, _ = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        job.kill()
        out, _ = job.communicate()
    return out


def tempdir():
    return tempfile.mkdtemp(prefix="tern_e2e_")


def check_same_training(run_dir, reference, steps, tol=1e-5):
    """The per-step losses of `run_dir` (steps 1..steps, each logged once) and its final parameters equal those of
    `reference` within `tol` (0: bitwise)."""
    got = [(x["step"], x["train_loss"]) for x in metrics(run_dir) if "train_loss" in x]
    want = {x["step"]: x["train_loss"] for x in metrics(reference) if "train_loss" in x}
    check([s for s, _ in got] == list(range(1, steps + 1)), f"steps 1-{steps} logged once each ({len(got)} lines)")
    worst = max((abs(want[s] - loss) if s in want else float("inf") for s, loss in got), default=float("inf"))
    check(worst <= tol, f"per-step losses equal the reference run (max difference {worst:.3g})")
    name = f"ckpt_step{steps:08d}.tern"
    diff = subprocess.run([CKPT_DIFF, f"{run_dir}/{name}", f"{reference}/{name}"], capture_output=True, text=True)
    check(diff.returncode == 0 and float(diff.stdout) <= tol,
          f"final parameters equal the reference run (max difference {diff.stdout.strip()})")


def slurm_conf(path, d, controller, nodes, partition_extra=""):
    """A private SLURM cluster's slurm.conf (auth/none, root, state and logs under `d`; %n: each slurmd's own files).
    controller: "host(address)"; nodes: NodeName lines."""
    with open(path, "w") as f:
        f.write(f"""ClusterName=terntest
SlurmctldHost={controller}
SlurmctldPort={SLURM_PORTS[0]}
SlurmdPort={SLURM_PORTS[1]}
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
MailProg=/bin/true
StateSaveLocation={d}/ctld
SlurmdSpoolDir={d}/slurmd_%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd_%n.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd_%n.log
{nodes}
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP {partition_extra}
""")
    os.makedirs(f"{d}/ctld", exist_ok=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SLURM_PORTS = (free_port(), free_port())


def sacrebleu_cli(args, stdin=None, env=None, cwd="."):
    """sacreBLEU's command line (its main()) in a forked child of this process, in directory `cwd`: (exit code,
    stdout, stderr). Its import is paid once, not once a comparison."""
    if env and "SACREBLEU" in env:  # read when sacreBLEU is imported: a process of its own
        p = subprocess.run([sys.executable, "-m", "sacrebleu", *args], capture_output=True, text=True, input=stdin,
                           env={**os.environ, **env}, cwd=cwd)
        return p.returncode, p.stdout, p.stderr
    import sacrebleu.sacrebleu as sacrebleu_main

    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write((stdin or "").encode())
        fin.seek(0)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(fin.fileno(), 0)
                os.dup2(fout.fileno(), 1)
                os.dup2(ferr.fileno(), 2)
                os.chdir(cwd)
                os.environ.update(env or {})
                sys.argv = ["sacrebleu", *args]
                try:
                    sacrebleu_main.main()
                    code = 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                traceback.print_exc()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        fout.seek(0)
        ferr.seek(0)
        return os.waitstatus_to_exitcode(status), fout.read().decode(), ferr.read().decode()


def chromium_render(html_path, d):
    """Renders a tern report page in headless Chromium: the data- attributes its inline check sets on <body> (charts,
    drawn, tables, errors), or None when Chromium is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return None
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={d}/chromium-profile", "--virtual-time-budget=5000"]
    dom = subprocess.run(args + ["--dump-dom", f"file://{html_path}"], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body([^>]*)>", dom)
    return dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1))) if body else {}


def check_forced_scores(ckpt, src_file, tgt_file, n, what=""):
    """translate --score-target (forced decoding, the search's steps) gives each of the n lines of tgt_file the
    log-probability teacher forcing gives it (evaluate --text --source --sentence-scores, log10, times ln 10)."""
    forced = run(["translate", "--checkpoint", ckpt, "-i", src_file, "--score-target", tgt_file]).stdout
    p = run(["evaluate", "--checkpoint", ckpt, "--text", tgt_file, "--source", src_file, "--sentence-scores"])
    log10 = [float(line.split("\t")[0]) for line in p.stdout.splitlines()]
    nats = [float(x) for x in forced.splitlines()]
    check(len(nats) == n and all(abs(a - b * math.log(10)) < 1e-3 for a, b in zip(nats, log10)),
          f"{what}--score-target equals evaluate's sentence scores ({nats} vs {log10})")
