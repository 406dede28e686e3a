#!/usr/bin/env python3
"""`tern score` against sacreBLEU's command line on the same files, in one run: wall time of each (process start
included, best of --repeat), the speed ratio, and whether the printed outputs are identical.

    python3 bench/score_vs_sacrebleu.py [REF HYP] [--metrics bleu chrf] [--options '-cw 2']
    python3 bench/score_vs_sacrebleu.py --systems 3 --lines 3000 --options=--paired-bs

Without REF and HYP it scores a perturbed copy of the Reina-Valera training verses against the originals
(work/bible/train.es from scripts/bible_corpus.py): 30,000 real Spanish sentences (--lines N: the first N);
--systems K perturbs K copies, each a little more (for the paired tests, --paired-bs or --paired-ar in --options).
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("ref", nargs="?")
ap.add_argument("hyp", nargs="?")
ap.add_argument("--metrics", nargs="+", default=["bleu", "chrf"])
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--systems", type=int, default=1)
ap.add_argument("--lines", type=int, default=0)
ap.add_argument("--tern", default=os.environ.get("TERN", os.path.join(HERE, "..", "build", "cli", "tern")))
ap.add_argument("--options", default="", help="more options for both, in one string, e.g. '-cw 2 -lc'")
a = ap.parse_args()
extra = a.options.split()

tmp = tempfile.mkdtemp()
if not a.ref:
    src = os.path.join(HERE, "..", "work", "bible", "train.es")
    if not os.path.exists(src):
        subprocess.run([sys.executable, os.path.join(HERE, "..", "scripts", "bible_corpus.py"), "--out",
                        os.path.dirname(src)], check=True)
    rng = random.Random(1)
    refs = open(src, encoding="utf-8").read().splitlines()
    if a.lines:
        refs = refs[:a.lines]
    a.hyp = []
    for k in range(a.systems):
        hyps = []
        for line in refs:
            w = line.split()
            w = [x for x in w if rng.random() > 0.1 + 0.02 * k]  # drop a tenth of the words (more in later systems)
            for _ in range(len(w) // 8):  # and swap a few neighbours
                i = rng.randrange(max(1, len(w) - 1))
                w[i:i + 2] = w[i:i + 2][::-1]
            hyps.append(" ".join(w))
        a.hyp.append(f"{tmp}/hyp{k + 1}")
        open(a.hyp[-1], "w", encoding="utf-8").write("\n".join(hyps) + "\n")
    a.ref = f"{tmp}/ref"
    open(a.ref, "w", encoding="utf-8").write("\n".join(refs) + "\n")
else:
    a.hyp = [a.hyp]

def timed(cmd):
    best, out = 1e9, None
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - t0)
        out = p.stdout
    return best, out


args = [a.ref, "-i", *a.hyp, "-m", *a.metrics, *extra]
t_tern, o_tern = timed([a.tern, "score", *args])
t_sacre, o_sacre = timed([sys.executable, "-m", "sacrebleu", *args])
n = sum(1 for _ in open(a.hyp[0], encoding="utf-8"))
print(f"{n} segments, {len(a.hyp)} system(s), metrics {' '.join(a.metrics)} {' '.join(extra)}")
print(f"tern score       {t_tern:8.3f} s")
print(f"sacrebleu        {t_sacre:8.3f} s")
print(f"speed-up         {t_sacre / t_tern:8.1f}x   identical output: {o_tern == o_sacre}")
if o_tern != o_sacre:
    print("--- tern\n" + o_tern + "--- sacrebleu\n" + o_sacre)
