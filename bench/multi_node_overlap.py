"""All-reduce overlap across hosts: `tern bench train` with one rank on each of two hosts (network namespaces,
tests/distributed/netns_cluster.py; root) whose link is shaped to 1 Gbit/s (tc tbf, burst 32 kbit, latency 400 ms).
Prints the step-time breakdown: the all-reduce time with the all-reduce after backward, the time still exposed with
it overlapped, and the hidden share.

    sudo python3 bench/multi_node_overlap.py [TERN [OLD_TERN]] [-- bench train options]

OLD_TERN, an older binary, is measured the same way right after, for a before/after ratio.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "distributed"))
from netns_cluster import Cluster  # noqa: E402

args = sys.argv[1:]
extra = args[args.index("--") + 1:] if "--" in args else []
bins = (args[:args.index("--")] if "--" in args else args) or [os.path.join(ROOT, "build", "cli", "tern")]
shape = extra or ["--batch", "32", "--src-len", "25", "--tgt-len", "25", "--src-vocab", "2000", "--tgt-vocab", "2000",
                  "--steps", "8", "--warmup", "2"]
env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
why = Cluster.unavailable()
if why:
    sys.exit(f"multi_node_overlap: {why}")
rows = []
for b in bins:
    out_json = os.path.join(tempfile.mkdtemp(), "bench.json")
    with Cluster(2) as c:
        c.slow_link(1)
        job = c.mpirun(1, [b, "bench", "train", os.path.join(ROOT, "configs", "bench_overlap.yaml"), *shape,
                           "--json", out_json], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        out, _ = job.communicate(timeout=900)
    if job.returncode != 0:
        sys.exit(f"{b}: bench train failed ({job.returncode}):\n{out[-3000:]}")
    r = json.load(open(out_json))
    r = r[0] if isinstance(r, list) else r
    rows.append((b, r))
    print(out.strip().splitlines()[-3] if len(out.strip().splitlines()) >= 3 else out)
print(f"{'binary':<40} {'step ms':>8} {'backward':>9} {'after-bwd comm':>15} {'exposed':>8} {'hidden':>7}")
for b, r in rows:
    bd = r["breakdown_ms"]
    print(f"{b[-40:]:<40} {r['step_ms']:>8.1f} {bd['backward']:>9.1f} {r['communication_after_backward_ms']:>15.1f} "
          f"{bd['exposed_communication']:>8.1f} {100 * r['hidden_communication_share']:>6.0f}%")
if len(rows) == 2:
    (_, new), (_, old) = rows
    print(f"exposed communication: new / old = {new['breakdown_ms']['exposed_communication'] / old['breakdown_ms']['exposed_communication']:.2f}; "
          f"step time new / old = {new['step_ms'] / old['step_ms']:.2f}")
