"""Language models in stream mode (data.lm_mode stream): training carries the state across windows and resumes
exactly (per-step losses and parameters bitwise equal to an uninterrupted run, also moved from 2 ranks to 1, the
carried state of both shards restored); validation equals `tern evaluate` on the same split; evaluate reports both
modes over the same tokens; the mode's bad configurations are refused with the rule."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
src, _ = synthetic_parallel(700)
write(f"{d}/text.txt", src)
run(["prepare", "--train-text", f"{d}/text.txt", "--valid-fraction", "0.1", "--test-fraction", "0.1",
     "--vocab-size", "60", "--out", f"{d}/lm.h5"])
text = (TINY_CONFIG.replace("model: {cell: lstm", "model: {type: lm, cell: lstm").replace(", attention: general", "")
        .replace("dropout: 0.0", "dropout: 0.2")
        .replace("batch_tokens: 400}", "batch_tokens: 200, lm_mode: stream, bptt: 25}")
        .replace("log_every: 5, valid_every: 10, save_every: 10", "log_every: 1, valid_every: 4, save_every: 100"))
cfg = tiny_config(d, f"{d}/lm.h5", "X", text=text)
N = 9  # an epoch of one shard is about 40 windows: resumes land mid-epoch, with a carried state


def train(ranks, run_dir, steps, resume=False, extra=()):
    return tern_job(["train", cfg, "--set", f"train.run_dir={run_dir}", "--set", f"train.max_steps={steps}",
                     "--set", "train.threads=1", "--set", "data.shards=2", "--no-progress", *extra,
                     *(["--resume"] if resume else [])], ranks)


full, part, moved = f"{d}/full", f"{d}/part", f"{d}/moved"
check(train(1, full, 2 * N).returncode == 0, "stream-mode training runs")
check(train(1, part, N).returncode == 0 and train(1, part, 2 * N, resume=True).returncode == 0,
      "stopped mid-epoch and resumed")
check_same_training(part, full, 2 * N, tol=0)
check(train(2, moved, N).returncode == 0 and train(1, moved, 2 * N, resume=True).returncode == 0,
      "2 ranks stopped mid-epoch, resumed on 1")
check_same_training(moved, full, 2 * N, tol=0)

# Without the carried state the resumed run differs: the state is what the checkpoint must hold.
p = train(1, f"{d}/sentence", N, extra=["--set", "data.lm_mode=sentence"])
p = train(1, f"{d}/sentence", 2 * N, resume=True)
check(p.returncode == 5 and "holds no carried stream state for shard 0" in p.stderr,
      "a sentence-mode checkpoint resumed mid-epoch in stream mode is refused, naming the shard")

# Validation (2 shards, 8 streams each) and evaluate (1 shard) read the valid split differently; with one shard they
# read it alike: the same stream-mode loss.
one = f"{d}/one"
check(train(1, one, 8, extra=["--set", "data.shards=1"]).returncode == 0, "one-shard run")
valid = [x for x in metrics(one) if "valid_loss" in x][-1]
p = run(["evaluate", "--checkpoint", f"{one}/ckpt_step00000008.tern", "--data", f"{d}/lm.h5", "--split", "valid",
         "--json", f"{d}/eval.json"])
r = json.load(open(f"{d}/eval.json"))
check(r["perplexity"]["mode"].startswith("stream: 8 streams in windows of 25"), f"evaluate reads the stream: {r['perplexity']['mode']}")
check(abs(r["perplexity"]["cross_entropy_nats_per_token"] - valid["valid_loss"]) < 1e-6,
      f"evaluate's stream loss {r['perplexity']['cross_entropy_nats_per_token']:.6f} = validation's {valid['valid_loss']:.6f}")
s = r["perplexity_sentence_mode"]
check(s["target_tokens"] == r["perplexity"]["target_tokens"] and s["words"] == r["perplexity"]["words"],
      f"both modes predict the same {s['target_tokens']:.0f} tokens (one </s> a sentence)")
p = run(["evaluate", "--checkpoint", f"{one}/ckpt_step00000008.tern", "--data", f"{d}/lm.h5", "--split", "valid",
         "--limit", "5"], expect=2)
check("evaluated on the whole split" in p.stderr, "--limit refused in stream mode")

# Bad configurations name the key and the rule.
p = run(["train", cfg, "--set", "data.bptt=0"], expect=2)
check("data.bptt must be in [1, 100000] (got 0)" in p.stderr, "bptt out of range")
p = run(["train", cfg, "--set", "data.bptt=500"], expect=2)
check("data.batch_tokens (200) must be at least data.bptt (500) in stream mode" in p.stderr, "bptt above batch_tokens")
p = run(["train", cfg, "--set", "model.type=ffnn_lm"], expect=2)
check("data.lm_mode stream carries a recurrent state: it needs model.type lm (got ffnn_lm)" in p.stderr,
      "stream mode refused for the feed-forward LM")
p = run(["train", cfg, "--set", "data.lm_mode=streaming"], expect=2)
check("data.lm_mode" in p.stderr and "streaming" in p.stderr, "unknown mode named")
finish()
