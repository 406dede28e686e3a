"""A user's path on a small corpus: prepare -> train -> evaluate -> translate, and a language model."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d)
run_dir = f"{d}/run"
cfg = tiny_config(d, corpus, run_dir)
p = run(["train", cfg, "--set", "train.max_steps=40", "--no-progress"])
for f in ["config.yaml", "train.log", "metrics.jsonl", "latest", "best.tern"]:
    check(os.path.exists(f"{run_dir}/{f}"), f"run dir holds {f}")
m = metrics(run_dir)
train_lines = [x for x in m if "train_loss" in x]
valid_lines = [x for x in m if "valid_loss" in x]
check(all(k in train_lines[0] for k in ["step", "epoch", "train_loss", "lr", "tokens_per_s"]), "metrics train keys")
check(all(k in valid_lines[0] for k in ["valid_loss", "valid_ppl"]), "metrics valid keys")
check(train_lines[-1]["train_loss"] < train_lines[0]["train_loss"] - 0.5, "training loss falls")
ckpts = sorted(f for f in os.listdir(run_dir) if f.startswith("ckpt_step"))
check(len(ckpts) <= 3 and ckpts[-1] == "ckpt_step00000040.tern", f"keep_last prunes old checkpoints ({ckpts})")
check("max_steps: 40" in open(f"{run_dir}/config.yaml").read(), "resolved config records the override")

ev = run(["evaluate", "--checkpoint", f"{run_dir}/best.tern", "--data", corpus, "--split", "test", "--beam", "3",
          "--hyp-out", f"{d}/hyp.txt", "--json", f"{d}/eval.json"])
r = json.load(open(f"{d}/eval.json"))
check(r["perplexity"]["ppl_per_token"] > 1 and r["perplexity"]["ppl_per_word"] > 1, "evaluate reports perplexities")
check(abs(r["perplexity"]["ppl_per_token"] - 2 ** r["perplexity"]["cross_entropy_bits_per_token"]) < 1e-6, "PPL = 2^H")
check(0 <= r["bleu"]["score"] <= 100 and r["bleu"]["signature"].startswith("nrefs:1|case:mixed"), "evaluate reports BLEU")
hyps = open(f"{d}/hyp.txt").read().splitlines()
check(len(hyps) == r["sentences"], "one hypothesis per test sentence")

src = open(f"{d}/train.en").read().splitlines()[:5]
t = run(["translate", "--checkpoint", f"{run_dir}/best.tern", "--beam", "2"], stdin="\n".join(src) + "\n")
out = t.stdout.splitlines()
check(len(out) == 5 and all(out), "translate: one non-empty line per input line")

# Scoring text pairs under a seq2seq model (as marian-scorer): --text TARGET --source SOURCE gives the perplexity of
# the same pairs prepared as a corpus split, and --sentence-scores one line a pair.
test_src, test_tgt = synthetic_parallel(30, seed=9)
write(f"{d}/pairs.en", test_src)
write(f"{d}/pairs.es", test_tgt)
run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--valid-fraction", "0.1",
     "--test-src", f"{d}/pairs.en", "--test-tgt", f"{d}/pairs.es", "--vocab-size", "60", "--out", f"{d}/pairs.h5"])
run(["train", cfg, "--set", f"data.corpus={d}/pairs.h5", "--set", f"train.run_dir={d}/pairs_run", "--set",
     "train.max_steps=5", "--no-progress"])
pairs_ckpt = f"{d}/pairs_run/ckpt_step00000005.tern"
by_corpus = json.loads(run(["evaluate", "--checkpoint", pairs_ckpt, "--data", f"{d}/pairs.h5", "--no-translate"]).stdout)
by_text = json.loads(run(["evaluate", "--checkpoint", pairs_ckpt, "--text", f"{d}/pairs.es", "--source",
                          f"{d}/pairs.en", "--batch", "7"]).stdout)
check(by_text["sentences"] == 30 and
      abs(by_text["perplexity"]["ppl_per_token"] / by_corpus["perplexity"]["ppl_per_token"] - 1) < 1e-5 and
      by_text["perplexity"]["target_tokens"] == by_corpus["perplexity"]["target_tokens"],
      f"pairs scored from text equal the corpus split ({by_text['perplexity']['ppl_per_token']} vs "
      f"{by_corpus['perplexity']['ppl_per_token']})")
scores = run(["evaluate", "--checkpoint", pairs_ckpt, "--text", f"{d}/pairs.es", "--source", f"{d}/pairs.en",
              "--sentence-scores"]).stdout.splitlines()
check(len(scores) == 30 and all(float(s.split("\t")[0]) < 0 for s in scores), "one log10 probability a pair")
write(f"{d}/short.en", test_src[:29])
for args, code, needle in [([], 2, "is a seq2seq model: --text is then the target text"),
                           (["--source", f"{d}/short.en"], 4, "--source and --text must be line-aligned")]:
    p = run(["evaluate", "--checkpoint", pairs_ckpt, "--text", f"{d}/pairs.es", *args], expect=code)
    check(needle in p.stderr, f"{args}: refused ({p.stderr.strip()[-140:]})")

# Training on: the loss goes down enough that greedy output resembles the reference.
cfg2 = tiny_config(d, corpus, f"{d}/run2", name="tiny2.yaml")
run(["train", cfg2, "--set", "train.max_steps=250", "--set", "train.valid_every=0", "--no-progress"])
ev2 = run(["evaluate", "--checkpoint", f"{d}/run2/{open(f'{d}/run2/latest').read().strip()}", "--data", corpus,
           "--beam", "1", "--json", f"{d}/eval2.json"])
r2 = json.load(open(f"{d}/eval2.json"))
check(r2["bleu"]["score"] > 20, f"longer training learns the synthetic mapping (BLEU {r2['bleu']['score']:.1f})")
# Each score with its bootstrap interval (sacreBLEU --confidence: tern score's, tested against sacreBLEU).
for metric in ("bleu", "chrf"):
    c = r2[metric].get("confidence", {})
    check(c.get("resamples") == 1000 and c.get("seed") == 12345 and 0 < c.get("ci", 0) < 50
          and abs(c.get("mean", -1e9) - r2[metric]["score"]) < 3 * c.get("ci", 0),
          f"evaluate gives {metric}'s 95% bootstrap interval: {r2[metric]['score']:.2f} ± {c.get('ci', 0):.2f}")

# evaluate --tokenize: BLEU with another of tern score's tokenizers (signed in the JSON).
ev3 = json.loads(run(["evaluate", "--checkpoint", f"{d}/run2/{open(f'{d}/run2/latest').read().strip()}", "--data",
                      corpus, "--beam", "1", "--tokenize", "char"]).stdout)
check("tok:char" in ev3["bleu"]["signature"] and abs(ev3["bleu"]["score"] - r2["bleu"]["score"]) > 1e-9,
      f"evaluate --tokenize char: BLEU {ev3['bleu']['score']:.3f} ({ev3['bleu']['signature']}), 13a "
      f"{r2['bleu']['score']:.3f}")

# Early stopping and the plateau schedule: with SGD at lr 1e-30 the weights cannot change, so validation never
# improves after the first one.
frozen = ["--set", "optim.optimizer=sgd", "--set", "optim.lr=1e-30", "--set", "train.valid_every=2",
          "--set", "train.max_steps=100", "--no-progress"]
run(["train", cfg, "--set", f"train.run_dir={d}/early", "--set", "train.early_stopping=2", *frozen])
last = max(x["step"] for x in metrics(f"{d}/early"))
check(last == 6, f"early stopping after 2 validations without improvement (stopped at step {last})")
run(["train", cfg, "--set", f"train.run_dir={d}/plateau", "--set", "optim.schedule=plateau", "--set",
     "optim.plateau_patience=1", "--set", "train.log_every=1", *frozen, "--set", "train.max_steps=8"])
lrs = {x["step"]: x["lr"] for x in metrics(f"{d}/plateau") if "train_loss" in x}
check(lrs[4] == 1e-30 and abs(lrs[5] / 5e-31 - 1) < 1e-9 and abs(lrs[7] / 2.5e-31 - 1) < 1e-9,
      f"plateau halves the lr after each validation without improvement ({lrs})")

# Joint vocabulary: one SentencePiece model for both sides.
run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--joint-vocab", "--vocab-size", "80",
     "--valid-fraction", "0.1", "--out", f"{d}/joint.h5"])
import h5py  # noqa: E402
with h5py.File(f"{d}/joint.h5") as f:
    check(f["vocab/src"].attrs["hash"] == f["vocab/tgt"].attrs["hash"], "joint vocabulary shared by both sides")

# Language model on monolingual text.
run(["prepare", "--train-text", f"{d}/train.es", "--valid-fraction", "0.1", "--test-fraction", "0.1",
     "--vocab-size", "60", "--out", f"{d}/lm.h5"])
lm_cfg = tiny_config(d, f"{d}/lm.h5", f"{d}/lm_run", name="lm.yaml")
run(["train", lm_cfg, "--set", "model.type=lm", "--no-progress"])
lm = run(["evaluate", "--checkpoint", f"{d}/lm_run/best.tern", "--data", f"{d}/lm.h5", "--split", "test"])
lr = json.loads(lm.stdout)
check("bleu" not in lr and lr["perplexity"]["ppl_per_token"] < 60, f"LM perplexity {lr['perplexity']['ppl_per_token']:.2f} below uniform")
shutil.rmtree(d)
finish()
