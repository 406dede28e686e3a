"""tern ngram against KenLM's own outputs on King James text (shared/ngram-kenlm: lmplz ARPA files, query
perplexities and per-sentence scores): modified Kneser-Ney within 0.1%; Katz, cut-off and pruned models written as
ARPA that KenLM (the PyPI kenlm module) loads and scores as tern does; plus the command's bad inputs."""
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

REF = os.path.join(os.environ.get("TERN_SOURCE", "."), "..", "shared", "ngram-kenlm")
if not os.path.exists(os.path.join(REF, "kjv.o3.arpa.gz")):
    print(f"SKIP: KenLM reference outputs not found at {REF} (they come with the project's shared/ folder)")
    sys.exit(77)


def load_arpa(path):
    rows, n = {}, 0
    with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:line.index("-")])
            elif n and line and not line.startswith("\\"):
                p = line.split("\t")
                rows[(n, p[1])] = (float(p[0]), float(p[2]) if len(p) > 2 else 0.0)
    return rows


def kenlm_query(path):
    out = {}
    for line in open(path):
        k, v = line.rstrip("\n").split(":\t")
        out[k] = float(v)
    return out


def rel(a, b):
    return abs(a - b) / abs(b)


d = tempdir()
train, test = f"{REF}/train.txt", f"{REF}/test.txt"
for order in (2, 3, 4):
    arpa, scores = f"{d}/o{order}.arpa", f"{d}/o{order}.scores"
    p = run(["ngram", "--order", str(order), "--smoothing", "kneser-ney", "--train", train, "--test", test,
             "--arpa", arpa, "--sentence-scores", scores, "-f", "json"])
    ours = json.loads(p.stdout)
    q = kenlm_query(f"{REF}/kjv.o{order}.query.txt")
    check(ours["tokens"] == q["Tokens"] and ours["oovs"] == q["OOVs"],
          f"order {order}: tokens {ours['tokens']} and OOVs {ours['oovs']} as KenLM counts them")
    check(rel(ours["ppl"], q["Perplexity including OOVs"]) < 1e-3,
          f"order {order}: perplexity {ours['ppl']:.4f} vs KenLM {q['Perplexity including OOVs']:.4f}")
    check(rel(ours["ppl_excluding_oov"], q["Perplexity excluding OOVs"]) < 1e-3,
          f"order {order}: perplexity without OOVs {ours['ppl_excluding_oov']:.4f} vs KenLM "
          f"{q['Perplexity excluding OOVs']:.4f}")
    ref_arpa = f"{REF}/kjv.o{order}.arpa.gz"
    if os.path.exists(ref_arpa):
        a, b = load_arpa(arpa), load_arpa(ref_arpa)
        check(set(a) == set(b), f"order {order}: the same {len(b)} n-grams as lmplz")
        worst_p = max(rel(10 ** a[k][0], 10 ** b[k][0]) for k in b if k in a)
        worst_b = max(rel(10 ** a[k][1], 10 ** b[k][1]) for k in b if k in a)
        check(worst_p < 1e-3 and worst_b < 1e-3,
              f"order {order}: ARPA probabilities within {worst_p:.2e} and backoffs within {worst_b:.2e} of lmplz")
    if order == 3:
        theirs = [float(l.split()[1]) for l in open(f"{REF}/kjv.o3.query_sentences.txt") if l.startswith("Total:")]
        mine = [float(l) for l in open(scores)]
        worst = max(rel(x, y) for x, y in zip(mine, theirs))
        check(len(mine) == len(theirs) == 600 and worst < 1e-3,
              f"per-sentence log10 probabilities within {worst:.2e} of KenLM's query")

# Katz, count cutoffs and entropy pruning: the ARPA file tern writes, loaded by KenLM, gives every test sentence the
# log10 probability tern gives it (ARPA stores 7 digits: within 2e-4 a sentence of about 40 tokens).
import kenlm  # noqa: E402  (scripts/setup.sh installs it)

for smoothing, order, extra in (("katz", 3, []), ("katz", 4, ["--cutoff", "1,1,2"]),
                                ("kneser-ney", 4, ["--prune", "1e-7"]),
                                ("interpolated", 3, ["--cutoff", "1,2", "--prune", "1e-6"])):
    arpa, scores = f"{d}/{smoothing}{order}.arpa", f"{d}/{smoothing}{order}.scores"
    p = run(["ngram", "--order", str(order), "--smoothing", smoothing, *extra, "--train", train, "--test", test,
             "--arpa", arpa, "--sentence-scores", scores, "-f", "json"])
    ours = json.loads(p.stdout)
    check((ours["pruned_ngrams"] > 0) == bool(extra), f"{smoothing} {extra}: {ours['pruned_ngrams']} n-grams removed")
    model = kenlm.Model(arpa)
    mine = [float(l) for l in open(scores)]
    theirs = [model.score(l.strip(), bos=True, eos=True) for l in open(test)]
    worst = max(abs(x - y) for x, y in zip(mine, theirs))
    check(len(mine) == len(theirs) == 600 and worst < 2e-4,
          f"{smoothing} order {order} {' '.join(extra)}: KenLM scores the {len(theirs)} sentences within {worst:.1e}")
    check(abs(sum(theirs) - ours["log10_prob"]) < 1e-3 * abs(ours["log10_prob"]), "corpus total as KenLM's")

# The other smoothings rank as theory says on the same text; text output names the numbers like query does.
ppl = {}
for s in ("laplace", "add-k", "interpolated", "katz", "kneser-ney"):
    p = run(["ngram", "--order", "3", "--smoothing", s, "--train", train, "--test", test, "-f", "json"])
    ppl[s] = json.loads(p.stdout)["ppl"]
check(ppl["kneser-ney"] < ppl["katz"] < ppl["interpolated"] < ppl["add-k"] < ppl["laplace"], f"perplexity order {ppl}")
p = run(["ngram", "--order", "2", "--train", train, "--test", test])
check("Perplexity including OOVs:\t88.1" in p.stdout and "Tokens:\t22042" in p.stdout, "text output")

# A tern corpus (.h5) as input: its SentencePiece pieces are the words.
corpus = make_corpus(d, n=400)
p = run(["ngram", "--order", "3", "--smoothing", "interpolated", "--train", corpus, "--test", corpus, "-f", "json"])
r = json.loads(p.stdout)
import h5py  # noqa: E402
with h5py.File(corpus, "r") as f:
    n_test = int(f["test"].attrs["num_sentences"])
check(r["sentences"] == n_test > 0 and r["oovs"] == 0 and r["ppl"] > 1, f"HDF5 corpus input: {r['sentences']} test sentences")

# Character units: a space becomes "▁", one token a character plus one </s> a sentence; the ARPA lists them.
p = run(["ngram", "--order", "4", "--unit", "char", "--train", train, "--test", test], expect=4)
check("pass --discount-fallback" in p.stderr, "character Kneser-Ney without singletons at some order: the error says what to do")
p = run(["ngram", "--order", "4", "--unit", "char", "--discount-fallback", "--train", train, "--test", test,
         "--arpa", f"{d}/char.arpa", "-f", "json"])
r = json.loads(p.stdout)
lines = [l.split() for l in open(test, encoding="utf-8") if l.strip()]
want = sum(len("▁".join(w)) + 1 for w in lines)
check(r["unit"] == "char" and r["tokens"] == want and r["oovs"] == 0 and 1 < r["ppl"] < 30,
      f"--unit char: {r['tokens']} tokens = characters + </s> ({want}), perplexity per character {r['ppl']:.3f}")
arpa = load_arpa(f"{d}/char.arpa")
check((1, "▁") in arpa and (1, "a") in arpa and max(n for n, _ in arpa) == 4, "the character ARPA has the space and letters")
p = run(["ngram", "--unit", "byte", "--train", train, "--test", test], expect=2)
check("--unit must be word or char (got byte)" in p.stderr, "an unknown --unit is a config error")

# Bad inputs: a clear message, a non-zero exit, no output file.
out = f"{d}/never.arpa"
p = run(["ngram", "--order", "6", "--train", train, "--test", test, "--arpa", out], expect=2)
check("ngram order must be between 1 and 5 (got 6)" in p.stderr and not os.path.exists(out), "order out of range")
p = run(["ngram", "--order", "3", "--smoothing", "add-k", "--train", train, "--test", test, "--arpa", out], expect=2)
check("ARPA cannot represent add-k smoothing above order 1" in p.stderr and not os.path.exists(out), "add-k ARPA refused")
p = run(["ngram", "--train", f"{d}/missing.txt", "--test", test], expect=4)
check(f"{d}/missing.txt: cannot open text file" in p.stderr, "missing training file named")
with open(f"{d}/bad.txt", "wb") as f:
    f.write(b"good line\nbad \xff byte\n")
p = run(["ngram", "--train", train, "--test", f"{d}/bad.txt"], expect=4)
check(f"{d}/bad.txt:2: invalid UTF-8" in p.stderr, "invalid UTF-8 named by file and line")
p = run(["ngram", "--train", corpus, "--train-split", "dev", "--test", test], expect=4)
check("has no split 'dev'" in p.stderr, "unknown corpus split named")
p = run(["ngram", "--cutoff", "1,x", "--train", train, "--test", test, "--arpa", out], expect=2)
check("--cutoff '1,x': item 2 ('x') is not a whole number" in p.stderr and not os.path.exists(out), "bad --cutoff")
p = run(["ngram", "--cutoff", "3,1", "--train", train, "--test", test], expect=2)
check("the unigram minimum must be 1 (got 3)" in p.stderr, "unigram cutoff refused")
p = run(["ngram", "--prune", "2", "--train", train, "--test", test], expect=2)
check("--prune threshold must be in [0, 1] (got 2" in p.stderr, "prune out of range")
p = run(["ngram", "--prune", "1e-7", "--smoothing", "laplace", "--order", "2", "--train", train, "--test", test],
        expect=2)
check("need a backoff model" in p.stderr, "pruning refused for add-one smoothing")
finish()
