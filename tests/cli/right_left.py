"""Right-to-left models (model.right_left, Marian --right-left) and n-best reranking (translate and evaluate
--rescore) through the CLI: a right-to-left model trains (logged, resumed bitwise), translates and evaluates in reading
order, scores given translations as teacher forcing does, and is refused where it cannot go (a prefix, an ensemble with
a left-to-right model, a language model); --rescore ranks the beam's hypotheses by the weighted sum of the search's
score and each model's log-probability, length-normalized as the search's, which evaluate's sentence scores reproduce
for a right-to-left model, one of other vocabularies and a language model; --nbest-format marian lists the features;
bad rescoring options are refused with the option, the rule and the value."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("valid_every: 10", "valid_every: 0")
cfg = tiny_config(d, corpus, f"{d}/l2r", text=text)
steps = ["--no-progress", "--set", "train.max_steps=400", "--set", "train.save_every=400"]
run(["train", cfg] + steps)
p = run(["train", cfg] + steps + ["--set", f"train.run_dir={d}/r2l", "--set", "model.right_left=true"])
check(", right to left)" in p.stderr, f"the log names the direction ({p.stderr[:600]})")
l2r, r2l = f"{d}/l2r/ckpt_step00000400.tern", f"{d}/r2l/ckpt_step00000400.tern"
check_resumes_bitwise(d, corpus, text, "r2l_resume", ["model.right_left=true"])  # 10 + 10 steps = 20 straight

# Reading order: the references score far higher than the same with their words reversed under the right-to-left
# model (teacher forcing, forced decoding), and its translations (validation's, through the corpus translator, and
# translate's) end with the final '.', which it writes first.
src = [l.rstrip("\n") for l in open(f"{d}/train.en")][:40]
write(f"{d}/in.txt", src)
ref = [l.rstrip("\n") for l in open(f"{d}/train.es")][:40]
write(f"{d}/in.ref", ref)
write(f"{d}/in.rev", [" ".join(reversed(r.split())) for r in ref])
for name, ckpt in [("l2r", l2r), ("r2l", r2l)]:
    scores = [[float(x) for x in run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--score-target",
                                      f"{d}/{t}"]).stdout.split()] for t in ("in.ref", "in.rev")]
    check(sum(scores[0]) > sum(scores[1]) + 5 * len(ref),
          f"{name}: the references in reading order score higher ({sum(scores[0]):.1f} vs {sum(scores[1]):.1f})")
run(["translate", "--checkpoint", r2l, "-i", f"{d}/in.txt", "--beam", "1", "-o", f"{d}/r2l.out"])
for f in (f"{d}/r2l/valid.hyp", f"{d}/r2l.out"):  # (the left-to-right model's often stop at the length limit)
    hyp = [l.split() for l in open(f)]
    check(sum(h[-1:] == ["."] for h in hyp) >= 0.9 * len(hyp), f"{f}: translations end with '.'")
run(["evaluate", "--checkpoint", r2l, "--data", corpus, "--split", "test", "--beam", "1", "--attention-samples", "4",
     "--json", f"{d}/r2l.json"])
samples = json.load(open(f"{d}/r2l.json"))["samples"]
check(len(samples) == 4 and all(len(x["output"]) == len(x["attention"]) for x in samples) and
      all("".join(p for p in x["output"] if p != "</s>").endswith("▁.") for x in samples),
      f"evaluate's attention samples in reading order, '.' last ({[x['output'][-3:] for x in samples]})")
out = [l.rstrip("\n") for l in open(f"{d}/r2l.out")]
check_forced_scores(r2l, f"{d}/in.txt", f"{d}/r2l.out", 40, "right to left: ")
p = run(["translate", "--checkpoint", r2l, "-i", f"{d}/in.txt", "--beam", "1", "--alignment", "--word-scores"])
rows = [line.split(" ||| ") for line in p.stdout.splitlines()]
check([r[0] for r in rows] == out, "--alignment and --word-scores translate alike")
check(all(len(r[2].split()) - len(r[0].split()) in (0, 1) for r in rows), "a score a word, then </s>'s (if it ended)")
check(all(int(l.split("-")[1]) < len(r[0].split()) for r in rows for l in r[1].split()), "links within the words")

# Refusals: a prefix, an ensemble of both directions, a right-to-left language model.
write(f"{d}/prefix.txt", ["el_"] * 40)
p = run(["translate", "--checkpoint", r2l, "-i", f"{d}/in.txt", "--prefix", f"{d}/prefix.txt"], expect=2)
check("--prefix: this model writes translations from their end (model.right_left)" in p.stderr, p.stderr[-300:])
p = run(["translate", "--checkpoint", l2r, r2l, "-i", f"{d}/in.txt", "-o", f"{d}/ens.txt"], expect=2)
check(f"{r2l} writes translations from right to left (model.right_left) and {l2r} from left to right" in p.stderr
      and not os.path.exists(f"{d}/ens.txt"), p.stderr[-300:])
p = run(["train", cfg, "--set", "model.type=lm", "--set", "model.right_left=true"], expect=2)
check("model.right_left" in p.stderr and "is for seq2seq models" in p.stderr, p.stderr[-300:])

# Reranking: the left-to-right beam reranked with the right-to-left model, a left-to-right model of another
# vocabulary and a target-language model.
os.makedirs(f"{d}/other")
make_corpus(f"{d}/other", n=600, vocab=48)
ocfg = tiny_config(d, f"{d}/other/c.h5", f"{d}/other/run", text=text, name="other.yaml")
run(["train", ocfg, "--no-progress", "--set", "train.max_steps=60", "--set", "train.save_every=60"])
other = f"{d}/other/run/ckpt_step00000060.tern"
run(["prepare", "--train-text", f"{d}/train.es", "--vocab-from", corpus, "--valid-fraction", "0.1",
     "--out", f"{d}/lm.h5"])
lcfg = tiny_config(d, f"{d}/lm.h5", f"{d}/lm", text=text.replace("attention: general", "type: lm"), name="lm.yaml")
run(["train", lcfg, "--no-progress", "--set", "train.max_steps=60", "--set", "train.save_every=60"])
lm = f"{d}/lm/ckpt_step00000060.tern"


def normalized(ckpt, hyp_file, src_file, alpha):
    """Each line's log-probability under ckpt (nats, </s> included, from evaluate's sentence scores), divided by GNMT's
    length penalty ((5 + tokens) / 6)^alpha."""
    args = ["evaluate", "--checkpoint", ckpt, "--text", hyp_file, "--sentence-scores"]
    rows = [r.split("\t") for r in run(args + (["--source", src_file] if src_file else [])).stdout.splitlines()]
    return [float(r[0]) * math.log(10) / ((5 + int(r[1])) / 6) ** alpha for r in rows]


beam, alpha = 4, 1.0
models = [r2l, other, lm]
base = ["translate", "--checkpoint", l2r, "-i", f"{d}/in.txt", "--beam", str(beam), "--length-penalty", str(alpha)]


def reranked(weights, nbest=beam):
    """translate --rescore with the models and weights: per line, the n-best list's (hypothesis, score) pairs."""
    args = ["--rescore"] + models + ["--rescore-weights"] + [str(w) for w in weights] + ["--nbest", str(nbest)]
    lines = [line.split("\t") for line in run(base + args).stdout.splitlines()]
    return [[(line[k], float(line[k + 1])) for k in range(0, len(line), 2)] for line in lines]


# The rescorers' terms: as evaluate --text (--source) scores the hypotheses' texts, length-normalized as the search
# (the searching model's weight 0).
weights = [0.0, 0.5, 0.8, 0.3]
nbest = reranked(weights)
check(len(nbest) == 40 and all(len(line) == beam for line in nbest), "--nbest N prints N reranked hypotheses")
hyps = [(i, h) for i, line in enumerate(nbest) for h, _ in line]
write(f"{d}/nbest.hyp", [h for _, h in hyps])
write(f"{d}/nbest.src", [src[i] for i, _ in hyps])
feats = [normalized(r2l, f"{d}/nbest.hyp", f"{d}/nbest.src", alpha),
         normalized(other, f"{d}/nbest.hyp", f"{d}/nbest.src", alpha), normalized(lm, f"{d}/nbest.hyp", None, alpha)]
want = [sum(w * f[j] for w, f in zip(weights[1:], feats)) for j in range(len(hyps))]
got = [s for line in nbest for _, s in line]
check(all(abs(a - b) < 1e-3 for a, b in zip(got, want)),
      f"each score is the weighted sum of the rescorers' normalized log-probabilities ({got[:4]} vs {want[:4]})")
check(all(line[k][1] >= line[k + 1][1] for line in nbest for k in range(beam - 1)), "best first")
plain = [line.split("\t") for line in run(base + ["--nbest", str(beam)]).stdout.splitlines()]
plain = [[(line[k], float(line[k + 1])) for k in range(0, len(line), 2)] for line in plain]
check(all(sorted(h for h, _ in a) == sorted(h for h, _ in b) for a, b in zip(plain, nbest)),
      "the reranked hypotheses are the beam's")
check(any([h for h, _ in a] != [h for h, _ in b] for a, b in zip(plain, nbest)), "reranking changes some order")
best = run(base + ["--rescore"] + models + ["--rescore-weights"] + [str(w) for w in weights]).stdout.splitlines()
check(best == [line[0][0] for line in nbest], "without --nbest: the best of the reranked beam")
# The searching model's term is the search's score: weights 1 0 0 0 give the beam's own n-best list.
check(reranked([1.0, 0, 0, 0]) == plain, "--rescore-weights 1 0 0 0: the search's ranking and scores")
twice = reranked([2.0, 0, 0, 0])
check(all([h for h, _ in a] == [h for h, _ in b] and all(abs(x - 2 * y) < 1e-4 * abs(y) for (_, x), (_, y) in zip(a, b))
          for a, b in zip(twice, plain)), "weight 2: the same ranking, twice its scores")
# --nbest-format marian: a line a hypothesis, "i ||| text ||| F0= search F1= ... ||| total": the same hypotheses and
# totals as the tab-separated list, F0 the search's score, the total the weighted sum of the features.
args = ["--rescore"] + models + ["--rescore-weights"] + [str(w) for w in [1.0, 0.5, 0.8, 0.3]]
tabs = reranked([1.0, 0.5, 0.8, 0.3])
rows = [r.split(" ||| ") for r in run(base + args + ["--nbest", str(beam), "--nbest-format", "marian"]).stdout
        .splitlines()]
feats = [[float(x) for x in r[2].split()[1::2]] for r in rows]
check(len(rows) == 40 * beam and [int(r[0]) for r in rows] == [i for i in range(40) for _ in range(beam)] and
      [r[1] for r in rows] == [h for line in tabs for h, _ in line], "marian n-best: a line a hypothesis, in order")
check(all(r[2].split()[0::2] == ["F0=", "F1=", "F2=", "F3="] for r in rows) and
      all(abs(float(r[3]) - s) < 1e-4 for r, s in zip(rows, [s for line in tabs for _, s in line])) and
      all(abs(float(r[3]) - (f[0] + 0.5 * f[1] + 0.8 * f[2] + 0.3 * f[3])) < 1e-5 for r, f in zip(rows, feats)),
      "marian n-best: the total is the weighted sum of the features")
own = {(i, h): sc for i, line in enumerate(plain) for h, sc in line}
check(all(abs(f[0] - own[(int(r[0]), r[1])]) < 1e-4 for r, f in zip(rows, feats)), "F0 is the search's score")
p = run(base + ["--nbest-format", "marian", "--nbest", "2"], stdin=None)
check(p.stdout.splitlines()[0].startswith("0 ||| ") and p.stdout.count("\n") == 80 and " ||| F0= " in p.stdout,
      "marian n-best without reranking: F0 alone")

# evaluate --rescore: the same reranking of a corpus split (a corpus whose test split is in.txt, the same pieces):
# the hypotheses translate --rescore gives, recorded in the JSON and the report; weight 0: the beam's own.
run(["prepare", "--vocab-from", corpus, "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es",
     "--valid-src", f"{d}/in.txt", "--valid-tgt", f"{d}/in.ref", "--test-src", f"{d}/in.txt", "--test-tgt",
     f"{d}/in.ref", "--out", f"{d}/in.h5"])
ev = ["evaluate", "--checkpoint", l2r, "--data", f"{d}/in.h5", "--split", "test", "--beam", str(beam),
      "--length-penalty", str(alpha), "--attention-samples", "0"]
resc = ["--rescore"] + models + ["--rescore-weights", "1", "0.5", "0.8", "0.3"]
run(ev + resc + ["--hyp-out", f"{d}/ev_rerank.hyp", "--json", f"{d}/l2r/test_eval.json"])
via_translate = run(base + resc).stdout.splitlines()
check([l.rstrip("\n") for l in open(f"{d}/ev_rerank.hyp")] == via_translate,
      "evaluate --rescore: translate --rescore's hypotheses")
t = json.load(open(f"{d}/l2r/test_eval.json"))["translation"]
check(t["rescore"] == models and t["rescore_weights"] == [1, 0.5, 0.8, 0.3], f"the JSON records the reranking ({t})")
run(["report", f"{d}/l2r", "--out", f"{d}/report"])
check(f"reranked (1 + 0.5 x {r2l} + 0.8 x {other} + 0.3 x {lm})" in open(f"{d}/report/report.md").read(),
      "the report names the reranking")
run(ev + ["--rescore", r2l, "--rescore-weights", "1", "0", "--hyp-out", f"{d}/ev_zero.hyp"])
run(ev + ["--hyp-out", f"{d}/ev_plain.hyp"])
check(open(f"{d}/ev_zero.hyp").read() == open(f"{d}/ev_plain.hyp").read() != open(f"{d}/ev_rerank.hyp").read(),
      "evaluate --rescore with weight 0: the beam's own best")
p = run(["evaluate", "--checkpoint", l2r, "--data", f"{d}/in.h5", "--no-translate", "--rescore", r2l], expect=2)
check("evaluate: --rescore reranks the search, and --no-translate searches nothing" in p.stderr, p.stderr[-300:])

# Bad rescoring options: named, with the rule and the value; nothing written.
for args, msg in [
    (["--rescore", r2l, "--beam", "1"], "--rescore reranks the hypotheses of a beam search: it needs --beam 2 or more"),
    (["--rescore", r2l, "--rescore-weights", "1"], "--rescore-weights needs one weight a model, the searching model's "
                                                  "first, then each --rescore checkpoint's: 1 for 2 model(s)"),
    (["--rescore-weights", "1", "1"], "--rescore-weights weighs the models of --rescore"),
    (["--rescore", r2l, "--rescore-weights", "1", "1e9"],
     "--rescore-weights must be finite, in [-1e6, 1e6] (got 1000000000)"),
    (["--rescore", r2l, "--score-target", f"{d}/r2l.out"], "--score-target scores given translations"),
    (["--rescore", r2l, "--sampling"], "--sampling draws one"),
    (["--rescore", f"{d}/in.txt"], f"{d}/in.txt"),
    (["--nbest-format", "marian", "--score-target", f"{d}/r2l.out"], "--nbest-format marian lists the hypotheses of "
                                                                      "a search: --score-target does not apply"),
    (["--nbest-format", "moses"], "--nbest-format: must be tabs or marian (got moses)"),
]:
    p = run(["translate", "--checkpoint", l2r, "-i", f"{d}/in.txt", "-o", f"{d}/bad.txt"] + args, expect=None)
    check(p.returncode in (2, 5) and msg in p.stderr and not os.path.exists(f"{d}/bad.txt"),
          f"{' '.join(args)}: exit {p.returncode}, {p.stderr.strip()[-200:]}")
finish()
