"""optim.accumulate K: K batches per shard summed into one step with one all-reduce. An epoch has K times fewer
steps; 2 ranks with 2 shards equal 1 rank with 2 shards at K = 2 (to float rounding: one rank sums the four
micro-batch gradients in turn, two ranks sum two each and then add the sums, so the additions are grouped differently;
at K = 1 the grouping is the same and mpi_two_ranks_equal_one checks bitwise equality); a resume with another K is
refused."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("log_every: 5, valid_every: 10, save_every: 10",
                           "log_every: 1, valid_every: 100, save_every: 100").replace("max_steps: 30", "max_epochs: 1")
cfg = tiny_config(d, corpus, "X", text=text)


def train(run_dir, accumulate, ranks=1, shards=1, extra=()):
    return tern_job(["train", cfg, "--set", f"train.run_dir={run_dir}", "--set", f"optim.accumulate={accumulate}",
                     "--set", f"data.shards={shards}", "--set", "train.threads=1", "--no-progress", *extra], ranks)


def losses(run_dir):
    return [r["train_loss"] for r in metrics(run_dir) if "train_loss" in r] if os.path.exists(
        f"{run_dir}/metrics.jsonl") else []


check(train(f"{d}/k1", 1).returncode == 0 and train(f"{d}/k3", 3).returncode == 0, "runs with accumulate 1 and 3")
s1 = [r["step"] for r in metrics(f"{d}/k1") if "train_loss" in r]
s3 = [r["step"] for r in metrics(f"{d}/k3") if "train_loss" in r]
check(s1 and s3 and s3[-1] == s1[-1] // 3, f"one epoch: {s1[-1] if s1 else None} steps at K=1, "
      f"{s3[-1] if s3 else None} at K=3")

one = train(f"{d}/one", 2, ranks=1, shards=2, extra=["--set", "train.max_epochs=0", "--set", "train.max_steps=6"])
two = train(f"{d}/two", 2, ranks=2, shards=2, extra=["--set", "train.max_epochs=0", "--set", "train.max_steps=6"])
a, b = losses(f"{d}/one"), losses(f"{d}/two")
check(one.returncode == 0 and two.returncode == 0 and len(a) == 6 and len(b) == 6
      and max(abs(x - y) / x for x, y in zip(a, b)) < 1e-5,
      f"K=2: 2 ranks equal 1 rank with 2 shards, per-step losses to float rounding ({a} vs {b})")
diff = subprocess.run([CKPT_DIFF, f"{d}/one/ckpt_step00000006.tern", f"{d}/two/ckpt_step00000006.tern"],
                      capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) < 1e-5, f"K=2: final parameters equal to float rounding ({diff.stdout.strip()})")

p = train(f"{d}/one", 3, shards=2, extra=["--resume", "--set", "train.max_epochs=0", "--set", "train.max_steps=8"])
check(p.returncode == 5 and "optim.accumulate is 2 there and 3 here" in p.stderr, "resume with another K is refused")
p = train(f"{d}/huge", 4000)
check(p.returncode == 2 and "optim.accumulate is 4000 but a shard has only" in p.stderr,
      f"K above the batches of an epoch is refused ({p.stderr.strip()[-160:]})")
finish()
