"""Two hosts x two ranks over TCP. A link that goes down for 3 s (shorter than distributed.timeout_s) does
not end the job; a link cut for good ends it within 60 s with the distributed error's exit code (3, or mpirun's
report of it) and a message that names the host and ranks that stopped answering."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403
from netns_cluster import Cluster  # noqa: E402

Cluster.skip_unless_able()

TIMEOUT_S = 8  # below the ~13 s after which TCP gives up on a peer (netns_cluster: tcp_retries2 = 5)
d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, f"{d}/run")
with Cluster(2) as c:
    job = c.mpirun(2, [TERN, "train", cfg, "--set", "train.max_steps=100000", "--set", "train.log_every=1",
                       "--set", "train.valid_every=0", "--set", "train.save_every=0", "--set", "data.shards=4",
                       "--set", "train.threads=1", "--set", f"distributed.timeout_s={TIMEOUT_S}", "--no-progress"],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_metrics(f"{d}/run", lines=3, timeout=180)
    # A flap: 3 s down, then up again. TCP retransmits; training goes on.
    c.link(1, up=False)
    time.sleep(3)
    c.link(1, up=True)
    before = len(metrics(f"{d}/run"))
    wait_for_metrics(f"{d}/run", lines=before + 5, timeout=TIMEOUT_S + 30)
    check(job.poll() is None, "a 3 s link flap (below distributed.timeout_s) does not end the job")
    # The cut: host 1 leaves the network for good.
    c.link(1, up=False)
    t0 = time.time()
    out = wait_job(job, timeout=90)
    elapsed = time.time() - t0
print(out[-3000:])
check(job.returncode not in (0, None), f"the job ends with a non-zero exit code ({job.returncode})")
check(elapsed < 60, f"the job ended {elapsed:.1f} s after the link was cut")
check(f"did not complete within distributed.timeout_s = {TIMEOUT_S} s" in out, "the timeout is reported")
check(f"host {c.names[1]} (ranks 2, 3) stopped answering" in out,
      "the message names the host and the ranks that stopped answering")
check("the network between the hosts stopped carrying data" in out, "and says the network is the suspect")
finish()
