"""A two-node SLURM cluster on the network-namespace hosts (tests/distributed/netns_cluster.py): slurmctld and one
slurmd on the first host, a slurmd on the second, auth/none. `sbatch --nodes=2 launch/slurm/train.sbatch` runs one
rank on each node through `srun --mpi=pmix`, over TCP between the hosts; per-step losses and final parameters equal a
1-rank run on the same global batch."""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403
from netns_cluster import Cluster  # noqa: E402

missing = [b for b in ["slurmctld", "slurmd", "sbatch", "srun", "scontrol", "sinfo"] if not shutil.which(b)]
if missing:
    print(f"SKIP: SLURM is not installed ({', '.join(missing)} missing; scripts/setup.sh installs it)")
    sys.exit(77)
Cluster.skip_unless_able()

SOURCE = os.environ.get("TERN_SOURCE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
d = tempdir()
corpus = make_corpus(d, n=600)
cfg_text = TINY_CONFIG.replace("max_steps: 30, log_every: 5", "max_steps: 10, log_every: 1")
cfg = tiny_config(d, corpus, f"{d}/unused", text=cfg_text)
sets = ["--set", "data.shards=2", "--set", "train.threads=1", "--no-progress"]
run(["train", cfg, "--set", f"train.run_dir={d}/one", *sets])

with Cluster(2) as c:
    # One configuration directory a node: the same slurm.conf, but an mpi.conf of its own so that the two nodes'
    # PMIx servers keep their client directories apart (on real nodes /tmp is not shared).
    conf = f"{d}/conf_0/slurm.conf"
    nodes = "\n".join(f"NodeName={n} NodeAddr={a} CPUs={os.cpu_count()} RealMemory=1000 State=UNKNOWN"
                      for n, a in zip(c.names, c.addrs))
    os.makedirs(f"{d}/conf_0")
    slurm_conf(conf, d, f"{c.names[0]}({c.addrs[0]})", nodes)
    for i in range(1, len(c.names)):
        os.makedirs(f"{d}/conf_{i}")
        shutil.copy(conf, f"{d}/conf_{i}/slurm.conf")
    for i in range(len(c.names)):
        os.makedirs(f"{d}/pmix_{i}")
        with open(f"{d}/conf_{i}/mpi.conf", "w") as f:
            f.write(f"PMIxCliTmpDirBase={d}/pmix_{i}\n")
    for n in c.names:
        os.makedirs(f"{d}/slurmd_{n}")
    env = {**os.environ, "SLURM_CONF": conf, "TERN": TERN,
           # Open MPI inside the job: TCP between the hosts over their eth0, shared memory within one.
           "OMPI_MCA_btl": "tcp,vader,self", "OMPI_MCA_btl_tcp_if_include": "eth0"}

    def on_host(i, *cmd):
        # nsenter, not `ip netns exec`: that one mounts a fresh /sys, without the cgroup file system slurmd needs.
        return ["nsenter", f"--net=/run/netns/{c.names[i]}", "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', c.names[i], *cmd]

    daemons = [subprocess.Popen(on_host(0, "slurmctld", "-D", "-i", "-f", conf), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    daemons += [subprocess.Popen(on_host(i, "slurmd", "-D", "-f", f"{d}/conf_{i}/slurm.conf", "-N", n),
                                 env={**env, "SLURM_CONF": f"{d}/conf_{i}/slurm.conf"}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT) for i, n in enumerate(c.names)]

    def slurm(*args):
        return subprocess.run(on_host(0, *args), env=env, capture_output=True, text=True, timeout=300)

    def logs():
        for name in sorted(os.listdir(d)):
            if name.endswith(".log") and name.startswith("slurm"):
                print(f"--- {name}\n" + open(f"{d}/{name}").read()[-1500:])

    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            states = slurm("sinfo", "-h", "-N", "-o", "%N %T").stdout.split()
            if states.count("idle") == 2:
                break
            time.sleep(0.5)
        if states.count("idle") != 2:
            logs()
        check(states.count("idle") == 2, f"two-node SLURM cluster is up ({states})")
        p = slurm("sbatch", "--parsable", "--wait", f"--chdir={SOURCE}", "--nodes=2", "--ntasks-per-node=1",
                  "--cpus-per-task=1", "--gpus-per-node=0", f"--output={d}/job-%j.log",
                  f"{SOURCE}/launch/slurm/train.sbatch", cfg, "--set", f"train.run_dir={d}/job", *sets)
        job = p.stdout.strip()
        log = open(f"{d}/job-{job}.log").read() if job and os.path.exists(f"{d}/job-{job}.log") else ""
        print(log[-2500:])
        if p.returncode != 0:
            logs()
        check(p.returncode == 0, f"sbatch --nodes=2 train.sbatch completes (exit {p.returncode}, {p.stderr.strip()[-300:]!r})")
    finally:
        subprocess.run(on_host(0, "scancel", "--full", "--partition=test"), env=env, capture_output=True)
        for proc in daemons:
            proc.terminate()
        for proc in daemons:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
hosts = {int(r): h for r, h in re.findall(r"\[rank (\d)/2\].*? on host (\S+)", log)}
check(hosts == {0: c.names[0], 1: c.names[1]}, f"one rank on each node ({hosts})")
check_same_training(f"{d}/job", f"{d}/one", steps=10, tol=0)
finish()
