"""tern average: the mean of the parameters of checkpoints of one run, loadable by evaluate and translate; --last N
RUN_DIR; refusals (mixed models or vocabularies, one file, an existing --out, resuming from an average)."""
import json
import os
import shutil
import subprocess

from common import *  # noqa: F403

d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, f"{d}/run")
run(["train", cfg, "--no-progress"])  # steps 10, 20, 30 saved (keep_last 3)
c = [f"{d}/run/ckpt_step{s:08d}.tern" for s in (10, 20, 30)]

p = run(["average", "--out", f"{d}/avg.tern", c[1], c[2]])
diff = subprocess.run([CKPT_DIFF, "--mean", f"{d}/avg.tern", c[1], c[2]], capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) < 1e-6, f"average of two = the mean of their parameters ({diff.stdout.strip()})")
diff = subprocess.run([CKPT_DIFF, f"{d}/avg.tern", c[2]], capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) > 1e-5, f"and differs from either input ({diff.stdout.strip()})")

p = run(["average", "--last", "3", f"{d}/run", "--out", f"{d}/last3.tern"])
diff = subprocess.run([CKPT_DIFF, "--mean", f"{d}/last3.tern", *c], capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) < 1e-6, f"--last 3 RUN_DIR averages the three newest ({diff.stdout.strip()})")

# It loads everywhere a checkpoint does.
e = json.loads(run(["evaluate", "--checkpoint", f"{d}/avg.tern", "--data", corpus, "--limit", "20"]).stdout)
check(e["perplexity"]["ppl_per_token"] > 1 and "bleu" in e and e["step"] == 30, f"evaluate loads it (step {e['step']})")
t = run(["translate", "--checkpoint", f"{d}/avg.tern"], stdin="the king said unto him .\n")
check(len(t.stdout.splitlines()) == 1, "translate loads it")

# Refusals.
p = run(["average", "--out", f"{d}/avg.tern", c[1], c[2]], expect=7)
check("avg.tern: --out: output exists; pass --overwrite" in p.stderr, f"existing --out refused ({p.stderr.strip()})")
run(["average", "--out", f"{d}/avg.tern", c[1], c[2], "--overwrite"])
p = run(["average", "--out", c[2], c[1], c[2], "--overwrite"], expect=7)
check("--out is also the input of checkpoint" in p.stderr, f"--overwrite of an input refused ({p.stderr.strip()})")
p = run(["average", "--out", f"{d}/one.tern", c[1]], expect=2)
check("at least two checkpoints" in p.stderr, "one checkpoint refused")
os.symlink(c[1], f"{d}/alias.tern")
p = run(["average", "--out", f"{d}/twice.tern", c[1], c[2], f"{d}/alias.tern"], expect=2)
check("are the same checkpoint (inputs 1 and 3)" in p.stderr and not os.path.exists(f"{d}/twice.tern"),
      f"a checkpoint given twice (through a link) refused ({p.stderr.strip()[-200:]})")
p = run(["average", "--out", f"{d}/nodir/avg.tern", c[1], c[2]], expect=7)
check("nodir does not exist" in p.stderr, f"--out in a missing directory refused ({p.stderr.strip()[-200:]})")
other = tiny_config(d, corpus, f"{d}/big", text=TINY_CONFIG.replace("hidden: 32", "hidden: 48").replace(
    "max_steps: 30", "max_steps: 10"), name="big.yaml")
run(["train", other, "--no-progress"])
p = run(["average", "--out", f"{d}/mixed.tern", c[2], f"{d}/big/ckpt_step00000010.tern"], expect=5)
check("model.hidden is 48 there but 32" in p.stderr and "ckpt_step00000010.tern" in p.stderr,
      f"mixed models refused, naming the file and key ({p.stderr.strip()})")
os.makedirs(f"{d}/v2")
corpus2 = make_corpus(f"{d}/v2", n=300, vocab=50)
run(["train", tiny_config(d, corpus2, f"{d}/vocab2", name="v2.yaml"), "--no-progress", "--set", "train.max_steps=10"])
p = run(["average", "--out", f"{d}/mixedv.tern", c[2], f"{d}/vocab2/ckpt_step00000010.tern"], expect=5)
check("vocabulary differs" in p.stderr, f"mixed vocabularies refused ({p.stderr.strip()})")
# Two runs of one config (another seed): their weights are unrelated, so their mean would be a broken model.
run(["train", cfg, "--no-progress", "--set", f"train.run_dir={d}/seed2", "--set", "train.seed=2", "--set",
     "train.max_steps=10"])
p = run(["average", "--out", f"{d}/runs.tern", c[2], f"{d}/seed2/ckpt_step00000010.tern"], expect=5)
check("belongs to run" in p.stderr and "do not average" in p.stderr and "ensemble" in p.stderr and
      not os.path.exists(f"{d}/runs.tern"), f"checkpoints of two runs refused ({p.stderr.strip()[-300:]})")
p = run(["average", "--last", "5", f"{d}/run", "--out", f"{d}/x.tern"], expect=5)
check("holds 3 step checkpoint(s); --last 5" in p.stderr, "--last more than the run holds refused")
shutil.copy(f"{d}/avg.tern", f"{d}/run/ckpt_step00000040.tern")
open(f"{d}/run/latest", "w").write("ckpt_step00000040.tern\n")
p = run(["train", cfg, "--resume", "--no-progress", "--set", "train.max_steps=50"], expect=5)
check("holds no optimizer state" in p.stderr, f"resuming from an average refused ({p.stderr.strip()[-200:]})")
finish()
