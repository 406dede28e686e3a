"""`tern generate` and `tern evaluate --text` on a small trained language model. generate: sampling reproducible by seed (and different with another),
greedy equal to top-k 1, beam search with n-best, the prompt kept at the start; bad options, a seq2seq checkpoint,
a prompt that is not UTF-8 and a missing checkpoint refused with their exit codes. evaluate --text: the perplexity
of a text file equals that of the same lines prepared as a corpus split, and --sentence-scores gives one line a
sentence whose log10 probabilities add up to it."""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
src, _ = synthetic_parallel(600)
write(f"{d}/text.txt", src)
run(["prepare", "--train-text", f"{d}/text.txt", "--valid-fraction", "0.1", "--vocab-size", "60", "--out", f"{d}/lm.h5"])
lm_cfg = TINY_CONFIG.replace("model: {cell: lstm", "model: {type: lm, cell: lstm").replace(", attention: general", "")
cfg = tiny_config(d, f"{d}/lm.h5", f"{d}/lm", text=lm_cfg, name="lm.yaml")
run(["train", cfg, "--no-progress"])
ckpt = f"{d}/lm/best.tern"


def gen(*args, expect=0):
    length = [] if "--max-len" in args else ["--max-len", "15"]
    return run(["generate", "--checkpoint", ckpt, *length, *args], expect=expect)


a, b = gen("--num", "4", "--seed", "7"), gen("--num", "4", "--seed", "7")
c = gen("--num", "4", "--seed", "8")
lines = a.stdout.splitlines()
check(len(lines) == 4 and all(l.strip() for l in lines), f"--num 4 prints 4 texts ({lines})")
check(a.stdout == b.stdout, "the same seed gives the same text")
check(a.stdout != c.stdout, "another seed gives other text")
check(a.stderr.count("generate: sequence") == 4 and "log-probability" in a.stderr, "each sequence's log-probability is logged")
g = gen("--beam", "1", "--prompt", "the king")
check(g.stdout.startswith("the king") and len(g.stdout.splitlines()) == 1, f"greedy continues the prompt ({g.stdout!r})")
check(gen("--top-k", "1", "--prompt", "the king", "--seed", "99").stdout == g.stdout, "top-k 1 equals greedy")
bm = gen("--beam", "4", "--num", "2", "--prompt", "the king")
check(len(bm.stdout.splitlines()) == 2, "beam 4 with --num 2 prints the 2 best")
scores = [float(l.rsplit(" ", 1)[1]) for l in bm.stderr.splitlines() if "generate: sequence" in l]
check(len(scores) == 2 and scores[0] >= scores[1], f"best first ({scores})")
# Bad input: its exit code and a message that names the option and the value.
for args, code, msg in [(["--temperature", "0"], 2, "--temperature must be a finite number above 0 (got 0)"),
                        (["--top-p", "1.5"], 2, "--top-p must be in (0, 1] (got 1.5)"),
                        (["--beam", "2", "--num", "3"], 2, "--num 3 is more than --beam 2"),
                        (["--max-len", "0"], 2, "--max-len must be in [1, 100000] (got 0)"),
                        (["--num", "1000000000"], 2, "--num must be in [1, 100000] (got 1000000000)"),
                        (["--prompt", "caf\udce9"], 2, "--prompt is not valid UTF-8")]:
    p = gen(*args, expect=code)
    check(msg in p.stderr, f"{args}: exit {code} and {msg!r} ({p.stderr.strip()[-200:]!r})")
# evaluate --text FILE against the same lines prepared as the test split with the same SentencePiece model.
import h5py  # noqa: E402
with h5py.File(f"{d}/lm.h5", "r") as f:
    open(f"{d}/lm.model", "wb").write(f["vocab/text"][()].tobytes())
held, _ = synthetic_parallel(40, seed=5)
write(f"{d}/held.txt", held)
run(["prepare", "--train-text", f"{d}/text.txt", "--test-text", f"{d}/held.txt", "--spm-model", f"{d}/lm.model",
     "--out", f"{d}/held.h5"])
on_corpus = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", f"{d}/held.h5", "--split", "test"]).stdout)
on_text = json.loads(run(["evaluate", "--checkpoint", ckpt, "--text", f"{d}/held.txt"]).stdout)
a, b = on_corpus["perplexity"], on_text["perplexity"]
check(a["target_tokens"] == b["target_tokens"] and abs(a["ppl_per_token"] / b["ppl_per_token"] - 1) < 1e-5,
      f"--text perplexity equals the corpus split's ({a['ppl_per_token']:.4f}, {b['ppl_per_token']:.4f})")
p = run(["evaluate", "--checkpoint", ckpt, "--text", f"{d}/held.txt", "--sentence-scores", "--json", f"{d}/s.json"])
rows = [l.split("\t") for l in p.stdout.splitlines()]
check(len(rows) == 40 and all(len(r) == 3 for r in rows), f"--sentence-scores: 40 lines of 3 fields ({rows[:2]})")
nats = -sum(float(r[0]) for r in rows) * math.log(10)
tokens = sum(int(r[1]) for r in rows)
check(tokens == b["target_tokens"] and abs(math.exp(nats / tokens) / b["ppl_per_token"] - 1) < 1e-4,
      "the sentences' log10 probabilities add up to the perplexity")
check(json.load(open(f"{d}/s.json"))["sentences"] == 40, "--json still writes the result")
write(f"{d}/blank.txt", ["", "  ", ""])
for args, code, msg in [(["--sentence-scores", "--data", f"{d}/held.h5"], 2, "--sentence-scores needs --text FILE"),
                        (["--text", f"{d}/blank.txt"], 4, "blank.txt: its 3 line(s) are blank"),
                        (["--data", f"{d}/held.h5", "--text", f"{d}/held.txt"], 2, "not both"),
                        ([], 2, "not neither"),
                        (["--text", f"{d}/missing.txt"], 4, "missing.txt: cannot open the --text file"),
                        (["--text", d], 4, "the --text file is a directory, not a text file"),  # was exit 1
                        (["--data", f"{d}/held.h5", "--int8"], 2, "--int8 applies to the search of seq2seq models")]:
    p = run(["evaluate", "--checkpoint", ckpt, *args], expect=code)
    check(msg in p.stderr, f"evaluate {args}: exit {code}, {msg!r}")
# The feed-forward LM (model.type ffnn_lm) trains, generates and scores text the same way.
ffnn_cfg = lm_cfg.replace("type: lm, cell: lstm, layers: 1,", "type: ffnn_lm, context: 3,")
cfg = tiny_config(d, f"{d}/lm.h5", f"{d}/ffnn", text=ffnn_cfg, name="ffnn.yaml")
p = run(["train", cfg, "--no-progress"])
check("model ffnn_lm" in p.stderr, "model.type ffnn_lm trains")
g1 = run(["generate", "--checkpoint", f"{d}/ffnn/best.tern", "--num", "3", "--seed", "2"])
g2 = run(["generate", "--checkpoint", f"{d}/ffnn/best.tern", "--num", "3", "--seed", "2"])
check(len(g1.stdout.splitlines()) == 3 and g1.stdout == g2.stdout, "ffnn_lm: generate, reproducible by seed")
r = json.loads(run(["evaluate", "--checkpoint", f"{d}/ffnn/best.tern", "--text", f"{d}/held.txt"]).stdout)
check(1 < r["perplexity"]["ppl_per_token"] < 60, f"ffnn_lm: evaluate --text ({r['perplexity']['ppl_per_token']:.2f})")
s2s = f"{d}/s2s"
corpus = make_corpus(d, n=300)
run(["train", tiny_config(d, corpus, s2s), "--set", "train.max_steps=2", "--no-progress"])
p = run(["generate", "--checkpoint", f"{s2s}/ckpt_step00000002.tern"], expect=2)
check("is a seq2seq model; generate needs a language model (model.type lm)" in p.stderr, "a seq2seq checkpoint is refused")
p = run(["evaluate", "--checkpoint", f"{s2s}/ckpt_step00000002.tern", "--text", f"{d}/held.txt"], expect=2)
check("is a seq2seq model: --text is then the target text, and --source FILE its source text" in p.stderr,
      "evaluate --text of a seq2seq checkpoint asks for --source")
p = run(["evaluate", "--checkpoint", ckpt, "--text",
         f"{d}/held.txt", "--source", f"{d}/held.txt"], expect=2)
check("is a language model: --source goes with a seq2seq checkpoint" in p.stderr, "--source refused for an LM")
p = run(["generate", "--checkpoint", f"{d}/ffnn/best.tern", "--seed", "-1"], expect=2)
check("--seed: must be >= 0 (got -1)" in p.stderr, f"a negative --seed is refused, not wrapped ({p.stderr.strip()!r})")
p = run(["generate", "--checkpoint", f"{d}/nope.tern"], expect=5)
check("nope.tern" in p.stderr, "a missing checkpoint is a checkpoint error naming it")
finish()
