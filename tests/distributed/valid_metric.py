"""train.valid_metric: validation translates the valid split and scores it as `tern score` does; metrics.jsonl has
valid_bleu / valid_chrf with their signatures; best.tern follows the chosen metric (higher is better); the same
scores with 2 ranks (each translates its shard); a language model refuses bleu; an old metric on resume starts the
best score over."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("log_every: 5, valid_every: 10, save_every: 10",
                           "log_every: 5, valid_every: 5, save_every: 100, keep_last: 10")
cfg = tiny_config(d, corpus, "X", text=text)


def score(run_dir, metric):
    args = ["score", f"{run_dir}/valid.ref", "-i", f"{run_dir}/valid.hyp", "-w", "15"] + \
        (["-m", "chrf"] if metric == "chrf" else [])
    return json.loads(run(args).stdout)


for metric in ("bleu", "chrf"):
    rd = f"{d}/{metric}"
    p = run(["train", cfg, "--set", f"train.run_dir={rd}", "--set", f"train.valid_metric={metric}",
             "--set", "train.max_steps=30", "--no-progress"])
    rows = [r for r in metrics(rd) if r["kind"] == "valid"]
    check(all("valid_bleu" in r and "valid_chrf" in r and "valid_loss" in r for r in rows) and len(rows) == 6,
          f"{metric}: every validation row has valid_bleu, valid_chrf and valid_loss ({len(rows)} rows)")
    # The last validation's output is valid.hyp: tern score on it gives the row's score and signature.
    s = score(rd, metric)
    last = rows[-1]
    check(abs(s["score"] - last[f"valid_{metric}"]) < 1e-9 and s["signature"] == last[f"valid_{metric}_signature"],
          f"{metric}: valid_{metric} {last[f'valid_{metric}']:.6f} equals tern score {s['score']:.6f} "
          f"({s['signature']})")
    refs = open(f"{rd}/valid.ref").read().splitlines()
    check(len(refs) == len(open(f"{rd}/valid.hyp").read().splitlines()) > 0, f"{metric}: one hypothesis per reference")
    # best.tern holds the step of the highest score (the first of equals).
    best_row = max(rows, key=lambda r: (r[f"valid_{metric}"], -r["step"]))
    best_step = json.loads(run(["evaluate", "--checkpoint", f"{rd}/best.tern", "--data", corpus,
                                "--no-translate"]).stdout)["step"]
    check(best_step == best_row["step"], f"{metric}: best.tern is step {best_step}, the best {metric} "
          f"{best_row[f'valid_{metric}']:.3f} at step {best_row['step']} (higher is better)")
    check(f"best valid {metric}" in p.stderr, f"{metric}: the summary names the metric")

# Beam search in validation: train.valid_beam.
rd = f"{d}/beam"
run(["train", cfg, "--set", f"train.run_dir={rd}", "--set", "train.valid_beam=4", "--set", "train.max_steps=10",
     "--no-progress"])
beam_rows = [r for r in metrics(rd) if r["kind"] == "valid"]
greedy_rows = [r for r in metrics(f"{d}/bleu") if r["kind"] == "valid" and r["step"] <= 10]
check(beam_rows[-1]["valid_loss"] == greedy_rows[-1]["valid_loss"] and
      open(f"{rd}/valid.hyp").read() != "",
      f"valid_beam 4: same weights, beam-search BLEU {beam_rows[-1]['valid_bleu']:.3f} vs greedy "
      f"{greedy_rows[-1]['valid_bleu']:.3f}")

# The search's length penalty and length limit: valid.hyp is what evaluate's search with the same options gives for
# the last step's weights; a limit of 0.5 times the source length shortens the hypotheses.
rd = f"{d}/search"
p = run(["train", cfg, "--set", f"train.run_dir={rd}", "--set", "train.valid_beam=4", "--set", "train.max_steps=10",
         "--set", "train.valid_length_penalty=0", "--set", "train.valid_max_len_ratio=0.5", "--no-progress"])
check("(beam 4, length penalty 0)" in p.stderr, "the validation log names the length penalty")
run(["evaluate", "--checkpoint", f"{rd}/ckpt_step00000010.tern", "--data", corpus, "--split", "valid", "--beam", "4",
     "--length-penalty", "0", "--max-len-ratio", "0.5", "--hyp-out", f"{d}/search.hyp"])
check(open(f"{d}/search.hyp").read() == open(f"{rd}/valid.hyp").read(),
      "valid_length_penalty / valid_max_len_ratio: valid.hyp equals evaluate --length-penalty 0 --max-len-ratio 0.5")
words = {n: sum(len(l.split()) for l in open(f"{d}/{n}/valid.hyp")) for n in ("search", "beam")}
check(words["search"] < words["beam"], f"the shorter limit gives shorter translations ({words})")

# train.valid_tokenize: BLEU's tokenizer in validation, as tern score's --tokenize (char: a different score, signed).
rd = f"{d}/char"
run(["train", cfg, "--set", f"train.run_dir={rd}", "--set", "train.valid_tokenize=char", "--set", "train.max_steps=10",
     "--no-progress"])
last = [r for r in metrics(rd) if r["kind"] == "valid"][-1]
s = json.loads(run(["score", f"{rd}/valid.ref", "-i", f"{rd}/valid.hyp", "-w", "15", "-tok", "char"]).stdout)
check("tok:char" in last["valid_bleu_signature"] and abs(s["score"] - last["valid_bleu"]) < 1e-9,
      f"valid_tokenize char: valid_bleu {last['valid_bleu']:.6f} equals tern score -tok char {s['score']:.6f} "
      f"({last['valid_bleu_signature']})")
p = run(["train", cfg, "--set", f"train.run_dir={d}/never", "--set", "train.valid_tokenize=mecab"], expect=2)
check("train.valid_tokenize is not a tokenizer tern has: BLEU tokenizer must be 13a, intl, char, zh or none "
      "(got mecab)\n" in p.stderr,
      f"an unknown valid_tokenize is refused: {p.stderr.strip()[-160:]}")

# Two ranks translate a shard each: the same scores as one rank (the same weights: overlap off, same global batch),
# and train.keep_best keeps the same checkpoint (every rank decides to save it; rank 0 prunes).
rd2, rd1 = f"{d}/two", f"{d}/one"
kept = ["--set", "train.keep_best=1", "--set", "train.keep_last=1", "--set", "train.valid_every=3"]
mp = subprocess.run(["mpirun", "-np", "2", TERN, "train", cfg, "--set", f"train.run_dir={rd2}",
                     "--set", "train.max_steps=10", "--set", "data.shards=2", "--no-progress"] + kept,
                    capture_output=True, text=True, timeout=300 * TIMEOUT_SCALE)
if mp.returncode != 0:
    print(mp.stderr[-2000:])
run(["train", cfg, "--set", f"train.run_dir={rd1}", "--set", "train.max_steps=10", "--set", "data.shards=2",
     "--no-progress"] + kept)
on_disk = {rd: sorted(f for f in os.listdir(rd) if f.startswith("ckpt_step")) for rd in (rd1, rd2)}
best = max((r for r in metrics(rd1) if r["kind"] == "valid"), key=lambda r: (r["valid_bleu"], -r["step"]))["step"]
check(on_disk[rd2] == on_disk[rd1] == sorted({f"ckpt_step{best:08d}.tern", "ckpt_step00000010.tern"}),
      f"2 ranks: keep_best 1 keeps the best validated checkpoint (step {best}) as 1 rank does ({on_disk[rd2]})")
r2 = [r["valid_bleu"] for r in metrics(rd2) if r["kind"] == "valid"]
r1 = [r["valid_bleu"] for r in metrics(rd1) if r["kind"] == "valid"]
check(mp.returncode == 0 and r2 == r1 and open(f"{rd2}/valid.hyp").read() == open(f"{rd1}/valid.hyp").read(),
      f"2 ranks: valid BLEU {r2} equals 1 rank's {r1}, valid.hyp identical")

# Resuming a run validated by loss with bleu: the best score starts over, and says so.
rd = f"{d}/switch"
run(["train", cfg, "--set", f"train.run_dir={rd}", "--set", "train.valid_metric=loss", "--set", "train.max_steps=10",
     "--no-progress"])
check(all("valid_bleu" not in r for r in metrics(rd)), "valid_metric loss: no translation, no valid_bleu")
p = run(["train", cfg, "--set", f"train.run_dir={rd}", "--set", "train.max_steps=15", "--resume", "--no-progress"])
check("the best score and early stopping start over" in p.stderr, "a metric change on resume is announced")

# Bad values.
p = run(["train", cfg, "--set", "train.valid_metric=bleu4", "--set", f"train.run_dir={d}/bad"], expect=2)
check("train.valid_metric must be auto, loss, bleu or chrf (got bleu4)" in p.stderr, "an unknown metric is refused")
p = run(["train", cfg, "--set", "train.valid_beam=0", "--set", f"train.run_dir={d}/bad"], expect=2)
check("train.valid_beam must be in [1, 64] (1: greedy) (got 0)" in p.stderr, "valid_beam 0 is refused")
for key, value, needle in [("valid_length_penalty", "-1", "train.valid_length_penalty must be in [0, 100] (0: none) (got -1)"),
                           ("valid_max_len_ratio", "0", "train.valid_max_len_ratio must be in (0, 100] (got 0)"),
                           ("valid_max_len_ratio", "inf", "train.valid_max_len_ratio")]:
    p = run(["train", cfg, "--set", f"train.{key}={value}", "--set", f"train.run_dir={d}/bad"], expect=2)
    check(needle in p.stderr and not os.path.exists(f"{d}/bad"), f"{key} {value} is refused ({p.stderr.strip()[-160:]})")
lm = tiny_config(d, corpus, f"{d}/lm", text=text.replace("model: {", "model: {type: lm, "), name="lm.yaml")
p = run(["train", lm, "--set", "train.valid_metric=bleu"], expect=2)
check("train.valid_metric bleu translates the valid split: it needs model.type seq2seq (got lm)" in p.stderr,
      "a language model refuses valid_metric bleu")
finish()
