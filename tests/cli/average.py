"""tern average: the mean of the parameters of checkpoints of one run, loadable by evaluate and translate; --last N
RUN_DIR; train.keep_best's checkpoints (kept, restored by a resume) and --best N RUN_DIR; refusals (mixed models or
vocabularies, one file, an existing --out, resuming from an average, --best beyond what the run kept)."""
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

# train.keep_best 3: the step checkpoints of the three best validations (chrF, higher is better; ties: the older) stay
# beside the newest (keep_last 1), whatever train.save_every says; a resume goes on with the same list.
def kept_run(name, steps, sets=(), resume=False):
    args = ["train", cfg, "--no-progress", "--set", f"train.run_dir={d}/{name}", "--set", f"train.max_steps={steps}",
            "--set", "train.valid_every=2", "--set", "train.save_every=0", "--set", "train.keep_last=1", "--set",
            "train.keep_best=3", "--set", "train.valid_metric=chrf", "--set", "optim.lr=0.03"]
    return run(args + [x for s in sets for x in ("--set", s)] + (["--resume"] if resume else []))


def on_disk(name):
    return sorted(int(f[9:17]) for f in os.listdir(f"{d}/{name}") if f.startswith("ckpt_step"))


kept_run("kb", 20)
scores = [(r["step"], r["valid_chrf"]) for r in metrics(f"{d}/kb") if "valid_chrf" in r]
best3 = sorted(sorted(scores, key=lambda x: (-x[1], x[0]))[:3])
best3_steps = [s for s, _ in best3]
check(len(scores) == 10 and on_disk("kb") == sorted(set(best3_steps) | {20}),
      f"keep_best 3 keeps the three best validated checkpoints and the newest ({on_disk('kb')}; best {best3})")
kept_run("kb_resumed", 10)
kept_run("kb_resumed", 20, resume=True)
check(on_disk("kb_resumed") == on_disk("kb"), f"a resume keeps the same ones ({on_disk('kb_resumed')})")
p = run(["average", "--best", "3", f"{d}/kb", "--out", f"{d}/best3.tern"])
diff = subprocess.run([CKPT_DIFF, "--mean", f"{d}/best3.tern"] + [f"{d}/kb/ckpt_step{s:08d}.tern" for s in best3_steps],
                      capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) < 1e-6, f"--best 3 RUN_DIR averages them ({diff.stdout.strip()})")
check("valid chrf" in p.stderr, f"and says their scores ({p.stderr.strip()[-160:]})")
def meta(path):  # docs/checkpoint_format.md: magic (8), version (4), then the JSON metadata's length (8) and bytes
    with open(path, "rb") as f:
        head = f.read(20)
        return json.loads(f.read(int.from_bytes(head[12:20], "little")))


m = meta(f"{d}/best3.tern")
check("valid_score" in meta(f"{d}/kb/ckpt_step{best3_steps[0]:08d}.tern") and "best_checkpoints" in meta(
      f"{d}/kb/ckpt_step00000020.tern"), "a validated step checkpoint records its score and the kept list")
check(len(m["averaged_from"]) == 3 and "best_checkpoints" not in m and "valid_score" not in m,
      f"the average keeps neither the first input's kept list nor its validation score ({sorted(m)})")
p = run(["average", "--best", "4", f"{d}/kb", "--out", f"{d}/best4.tern"], expect=5)
check("keeps 3 best validated checkpoint(s) so far (train.keep_best 3" in p.stderr and "--best 4 needs 4" in p.stderr,
      f"--best beyond the kept ones refused ({p.stderr.strip()[-200:]})")
p = run(["average", "--best", "2", f"{d}/run", "--out", f"{d}/best_none.tern"], expect=5)
check("kept no best checkpoints (train.keep_best is 0" in p.stderr, f"a run without keep_best refused ({p.stderr.strip()[-200:]})")
p = run(["average", "--best", "2", "--last", "2", f"{d}/kb", "--out", f"{d}/both.tern"], expect=2)
check("takes --last N or --best N (got both)" in p.stderr, f"--best with --last refused ({p.stderr.strip()})")
# A smaller keep_best on resume drops the worst of them at the next save; a bad value is refused.
kept_run("kb_resumed", 22, sets=["train.keep_best=1"], resume=True)
best1 = sorted(sorted([(r["step"], r["valid_chrf"]) for r in metrics(f"{d}/kb_resumed") if "valid_chrf" in r],
                      key=lambda x: (-x[1], x[0]))[:1])
check(on_disk("kb_resumed") == sorted({best1[0][0], 22}), f"keep_best 1 on resume keeps the best one ({on_disk('kb_resumed')}; {best1})")
p = run(["train", cfg, "--no-progress", "--set", f"train.run_dir={d}/kb_bad", "--set", "train.keep_best=101"], expect=2)
check("train.keep_best must be in [0, 100] (0: none) (got 101)" in p.stderr and not os.path.exists(f"{d}/kb_bad"),
      f"keep_best out of range refused ({p.stderr.strip()})")
finish()
