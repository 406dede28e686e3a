"""A real `mpirun -np 2` run equals a 1-rank run on the same global batch (data.shards = 2, dropout 0):
per-step losses and final parameters agree within 1e-5 in fp32."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
cfg_text = TINY_CONFIG.replace("max_steps: 30, log_every: 5", "max_steps: 12, log_every: 1")
cfg = tiny_config(d, corpus, "RUNDIR", text=cfg_text.replace("RUN", "RUNDIR"))
common_sets = ["--set", "data.shards=2", "--set", "train.threads=1", "--no-progress"]
run(["train", cfg, "--set", f"train.run_dir={d}/one", *common_sets])
p = subprocess.run(["mpirun", "-np", "2", TERN, "train", cfg, "--set", f"train.run_dir={d}/two", *common_sets],
                   capture_output=True, text=True, timeout=300)
print(p.stderr[-1500:])
check(p.returncode == 0, "mpirun -np 2 training succeeds")
check("[rank 0/2]" in p.stderr and "backend mpi (overlap on" in p.stderr,
      "log lines name the rank, the MPI backend and the overlapped all-reduce")
# Each rank holds only its shards: together they are the whole split, without overlap.
ranges = sorted((int(a), int(b), int(n)) for a, b, n in re.findall(r"reads train sentences \[(\d+), (\d+)\) of (\d+)", p.stderr))
check(len(ranges) == 2 and ranges[0][0] == 0 and ranges[0][1] == ranges[1][0] and ranges[1][1] == ranges[1][2],
      f"ranks read disjoint shards that cover the split {ranges}")
one = [x["train_loss"] for x in metrics(f"{d}/one") if "train_loss" in x]
two = [x["train_loss"] for x in metrics(f"{d}/two") if "train_loss" in x]
check(len(one) == 12 and len(two) == 12, f"12 logged steps each ({len(one)}, {len(two)})")
worst = max(abs(a - b) for a, b in zip(one, two))
check(worst < 1e-5, f"per-step losses agree (max difference {worst:.3g})")
diff = subprocess.run([CKPT_DIFF, f"{d}/one/ckpt_step00000012.tern", f"{d}/two/ckpt_step00000012.tern"],
                      capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) < 1e-5, f"final parameters agree (max difference {diff.stdout.strip()})")
# The same job with the all-reduce after backward instead of overlapped with it: identical numbers.
p = subprocess.run(["mpirun", "-np", "2", TERN, "train", cfg, "--set", f"train.run_dir={d}/two_sync",
                    "--set", "distributed.overlap=false", *common_sets], capture_output=True, text=True, timeout=300)
check(p.returncode == 0 and "overlap off" in p.stderr, "mpirun -np 2 with distributed.overlap=false succeeds")
sync = [x["train_loss"] for x in metrics(f"{d}/two_sync") if "train_loss" in x]
check(sync == two, "overlapped and post-backward all-reduce give identical per-step losses")
diff = subprocess.run([CKPT_DIFF, f"{d}/two/ckpt_step00000012.tern", f"{d}/two_sync/ckpt_step00000012.tern"],
                      capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) == 0.0, f"and identical parameters ({diff.stdout.strip()})")
# Ranks must agree on the config: a rank-dependent override is refused with the ranks named.
p = subprocess.run(["mpirun", "-np", "2", "sh", "-c",
                    f'{TERN} train {cfg} --set train.run_dir={d}/mismatch --set optim.lr=0.0${{OMPI_COMM_WORLD_RANK}}1 --no-progress'],
                   capture_output=True, text=True, timeout=120)
check(p.returncode != 0 and "ranks 1 have a different config or corpus than rank 0" in p.stderr,
      f"config mismatch across ranks is an error naming the rank ({p.stderr.strip()[-200:]!r})")
finish()
