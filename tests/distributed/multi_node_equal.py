"""Two hosts x two ranks (network namespaces joined by a bridge, Open MPI over TCP between the hosts): per-step losses
and final parameters equal a 1-rank run on the same global batch (data.shards = 4), and the ranks report the hosts
they run on."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403
from netns_cluster import Cluster  # noqa: E402

Cluster.skip_unless_able()

d = tempdir()
corpus = make_corpus(d, n=600)
cfg_text = TINY_CONFIG.replace("max_steps: 30, log_every: 5", "max_steps: 10, log_every: 1")
cfg = tiny_config(d, corpus, "RUNDIR", text=cfg_text.replace("RUN", "RUNDIR"))
common_sets = ["--set", "data.shards=4", "--set", "train.threads=1", "--no-progress"]
run(["train", cfg, "--set", f"train.run_dir={d}/one", *common_sets])
with Cluster(2) as c:
    job = c.mpirun(2, [TERN, "train", cfg, "--set", f"train.run_dir={d}/four", *common_sets],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = wait_job(job, timeout=240)
print(out[-2000:])
check(job.returncode == 0, f"4 ranks on 2 hosts train (exit {job.returncode})")
hosts = {int(r): h for r, h in re.findall(r"\[rank (\d)/4\].*? on host (\S+)", out)}
check(sorted(hosts) == [0, 1, 2, 3] and hosts[0] == hosts[1] == c.names[0] and hosts[2] == hosts[3] == c.names[1],
      f"ranks 0-1 run on the first host, 2-3 on the second ({hosts})")
check_same_training(f"{d}/four", f"{d}/one", steps=10)
finish()
