"""A run of 2N steps equals a run of N steps, stopped, then resumed for N more: bitwise-identical per-step losses and
final parameters, with 1 rank and with 2 ranks (dropout on, so RNG state must be restored too); and resumed on the
other number of ranks (2 -> 1 and 1 -> 2 with data.shards = 2: the random streams are per shard). Another number of
shards is refused."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("dropout: 0.0", "dropout: 0.2").replace("log_every: 5, valid_every: 10, save_every: 10",
                                                                  "log_every: 1, valid_every: 4, save_every: 100")
cfg = tiny_config(d, corpus, "X", text=text)
N = 7


def train(ranks, run_dir, steps, resume=False):
    cmd = [TERN, "train", cfg, "--set", f"train.run_dir={run_dir}", "--set", f"train.max_steps={steps}",
           "--set", "train.threads=1", "--set", "data.shards=2", "--no-progress"] + (["--resume"] if resume else [])
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks)] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        print(p.stderr[-2000:])
    return p.returncode


for ranks in (1, 2):
    full, part = f"{d}/full{ranks}", f"{d}/part{ranks}"
    ok = train(ranks, full, 2 * N) == 0 and train(ranks, part, N) == 0 and train(ranks, part, 2 * N, resume=True) == 0
    check(ok, f"{ranks} rank(s): runs succeed")
    a = [x["train_loss"] for x in metrics(full) if "train_loss" in x]
    b = [x["train_loss"] for x in metrics(part) if "train_loss" in x]
    check(len(a) == 2 * N and a == b, f"{ranks} rank(s): per-step losses bitwise identical ({len(a)} vs {len(b)} steps)")
    diff = subprocess.run([CKPT_DIFF, f"{full}/ckpt_step{2 * N:08d}.tern", f"{part}/ckpt_step{2 * N:08d}.tern"],
                          capture_output=True, text=True)
    check(diff.returncode == 0 and float(diff.stdout) == 0.0, f"{ranks} rank(s): final parameters identical ({diff.stdout.strip()})")

def same(ref, other, what):
    a = [x["train_loss"] for x in metrics(ref) if "train_loss" in x]
    b = [x["train_loss"] for x in metrics(other) if "train_loss" in x]
    diff = subprocess.run([CKPT_DIFF, f"{ref}/ckpt_step{2 * N:08d}.tern", f"{other}/ckpt_step{2 * N:08d}.tern"],
                          capture_output=True, text=True)
    check(len(a) == 2 * N and a == b and diff.returncode == 0 and float(diff.stdout) == 0.0,
          f"{what}: per-step losses and final parameters bitwise identical ({len(b)} steps, diff {diff.stdout.strip()})")


# A requeue onto another allocation: stopped at step N on one rank count, resumed on the other.
for first, then in ((2, 1), (1, 2)):
    run_dir = f"{d}/move{first}to{then}"
    ok = train(first, run_dir, N) == 0 and train(then, run_dir, 2 * N, resume=True) == 0
    check(ok, f"{first} -> {then} rank(s): runs succeed")
    same(f"{d}/full{first}", run_dir, f"{first} rank(s), resumed on {then}")
# 1 rank holding both shards trains exactly as 2 ranks holding one each.
same(f"{d}/full2", f"{d}/full1", "1 rank with 2 shards vs 2 ranks")
# Another number of shards (the global batch) is refused with the reason.
p = subprocess.run([TERN, "train", cfg, "--set", f"train.run_dir={d}/part2", "--set", "train.max_steps=20",
                    "--set", "data.shards=1", "--resume", "--no-progress"], capture_output=True, text=True)
check(p.returncode == 5 and "was trained with 2 data shard(s)" in p.stderr and "data.shards=2" in p.stderr,
      "resume with another number of shards is refused, naming data.shards")
finish()
