"""train.ema_decay: the weight average is saved, restored bitwise on resume, used by validation, evaluate and
translate (--no-ema: the trained weights), and refused outside [0, 1)."""
import json
import subprocess

from common import *  # noqa: F403

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("log_every: 5, valid_every: 10, save_every: 10",
                           "log_every: 1, valid_every: 5, save_every: 100, ema_decay: 0.9").replace(
    "dropout: 0.0", "dropout: 0.2")
cfg = tiny_config(d, corpus, "X", text=text)


def train(run_dir, steps, resume=False):
    return run(["train", cfg, "--set", f"train.run_dir={run_dir}", "--set", f"train.max_steps={steps}",
                "--no-progress"] + (["--resume"] if resume else []))


train(f"{d}/full", 12)
train(f"{d}/part", 6)
train(f"{d}/part", 12, resume=True)
full, part = f"{d}/full/ckpt_step00000012.tern", f"{d}/part/ckpt_step00000012.tern"
diff = subprocess.run([CKPT_DIFF, full, part], capture_output=True, text=True)  # loads the averages
check(diff.returncode == 0 and float(diff.stdout) == 0.0, f"the average survives resume bitwise ({diff.stdout.strip()})")
vf = {r["step"]: r["valid_loss"] for r in metrics(f"{d}/full") if "valid_loss" in r}
vp = {r["step"]: r["valid_loss"] for r in metrics(f"{d}/part") if "valid_loss" in r}  # + the stop at step 6
v = [vf[s] for s in sorted(vf)]
check(sorted(vf) == [5, 10, 12] and all(vp.get(s) == vf[s] for s in vf),
      f"validation losses identical across the resume ({vf} vs {vp})")

ema = json.loads(run(["evaluate", "--checkpoint", full, "--data", corpus, "--no-translate"]).stdout)
raw = json.loads(run(["evaluate", "--checkpoint", full, "--data", corpus, "--no-translate", "--no-ema"]).stdout)
check(ema["weights"] == "ema" and raw["weights"] == "trained" and
      ema["perplexity"]["ppl_per_token"] != raw["perplexity"]["ppl_per_token"],
      f"evaluate uses the average, --no-ema the weights (ppl {ema['perplexity']['ppl_per_token']:.4f} vs "
      f"{raw['perplexity']['ppl_per_token']:.4f})")
# Validation at step 12 scored the average: its loss is evaluate's on the valid split.
val = json.loads(run(["evaluate", "--checkpoint", full, "--data", corpus, "--split", "valid", "--no-translate"]).stdout)
check(abs(val["perplexity"]["cross_entropy_nats_per_token"] - v[-1]) < 1e-5,
      f"validation scores the average ({val['perplexity']['cross_entropy_nats_per_token']:.6f} vs {v[-1]:.6f})")
t1 = run(["translate", "--checkpoint", full], stdin="the king said unto him .\n").stdout
t2 = run(["translate", "--checkpoint", full, "--no-ema"], stdin="the king said unto him .\n").stdout
check(len(t1.splitlines()) == 1 and len(t2.splitlines()) == 1, "translate with and without --no-ema")

for bad in ("1", "-0.1", "1.5"):
    p = run(["train", cfg, "--set", f"train.ema_decay={bad}", "--set", f"train.run_dir={d}/bad"], expect=2)
    check(f"train.ema_decay must be in [0, 1) (0 disables) (got {bad})" in p.stderr, f"ema_decay {bad} refused")
finish()
