#!/usr/bin/env python3
"""Hostile probe (by hand, ~10 minutes on 2 cores): every config key of `tern train` and every numeric option of the
other commands with -1, 0, huge, nan, inf, text and empty values. Prints each accepted unusual value and every run
that is neither a clean run nor a refusal with exit 2 (or a data error) naming the key; no run may print an internal
error or a stack trace. Usage: TERN=build/cli/tern OMP_NUM_THREADS=1 python3 scripts/probe_hostile.py"""
import os, subprocess, sys, json, re
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cli"))
os.environ.setdefault("TERN", "build/cli/tern")
from common import *
d = tempdir()
corpus = make_corpus(d, n=200)
cfg = tiny_config(d, corpus, f"{d}/base")
run(["train", cfg, "--no-progress", "--set", "train.max_steps=2"])
ckpt = f"{d}/base/best.tern"
keys = subprocess.run([TERN, "train", cfg, "--set", "x.y=1"], capture_output=True, text=True).stderr
yaml = open(f"{d}/base/config.yaml").read()
sections = {}
sec = None
for line in yaml.splitlines():
    if not line.startswith(" ") and line.endswith(":"):
        sec = line[:-1]
    elif line.strip() and ":" in line:
        k = line.strip().split(":")[0]
        sections.setdefault(sec, []).append(k)
values = ["-1", "0", "1e30", "99999999999999999999", ".nan", ".inf", "-.inf", "text", "''", "[1]", "{a: 1}"]
bad = []
n = 0
for sec, ks in sections.items():
    for k in ks:
        for v in values:
            key = f"{sec}.{k}"
            run_dir = f"{d}/p{n}"; n += 1
            sets = ["--set", f"train.run_dir={run_dir}", "--set", "train.max_steps=2", "--set", "train.valid_every=1"]
            if key == "train.run_dir": sets = ["--set", "train.max_steps=2"]
            p = subprocess.run([TERN, "train", cfg, *sets, "--set", f"{key}={v}", "--no-progress"], capture_output=True,
                               text=True, timeout=120, cwd=d)  # relative paths (train.run_dir=text) land in d
            err = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
            # A file key names its value: a corpus that is not there is a data error, a checkpoint a checkpoint error.
            file_code = {"data.corpus": 4, "train.init_from": 5, "train.src_embeddings": 4, "train.tgt_embeddings": 4}.get(key)
            ok = (p.returncode == 2 and key in p.stderr) or p.returncode == 0 or (p.returncode == file_code and
                                                                                  v.strip("[]'") in p.stderr)
            if not ok or "internal error" in p.stderr or "Exception raised" in p.stderr:
                bad.append((key, v, p.returncode, err[-200:]))
            elif p.returncode == 0 and v not in ("0", "-1") :
                print(f"accepted {key}={v}", flush=True)
print("\n".join(map(str, bad)))
print(f"config keys: {len(bad)} unexpected of {n}")

# Numeric options of the other commands.
write(f"{d}/hyp", ["a b c"] * 3); write(f"{d}/ref", ["a b d"] * 3)
src, tgt = synthetic_parallel(100)
write(f"{d}/s.en", src); write(f"{d}/s.es", tgt)
# A target-language model for --lm (the corpus's target vocabulary).
run(["prepare", "--train-text", f"{d}/s.es", "--vocab-from", corpus, "--valid-fraction", "0.1", "--out", f"{d}/lm.h5"])
run(["train", tiny_config(d, f"{d}/lm.h5", f"{d}/lm_run", name="lm.yaml"), "--set", "model.type=lm", "--set",
     "train.max_steps=2", "--no-progress"])
lm = f"{d}/lm_run/ckpt_step00000002.tern"
n = 0
bases = {
 "prepare": (["prepare", "--train-src", f"{d}/s.en", "--train-tgt", f"{d}/s.es", "--vocab-size", "40", "--out", "OUT"],
             ["--valid-fraction", "--test-fraction", "--seed", "--vocab-size", "--spm-type", "--character-coverage", "--spm-sample", "--max-tokens", "--long-policy", "--empty-policy", "--vocab-side", "--user-symbols"]),
 "evaluate": (["evaluate", "--checkpoint", ckpt, "--data", corpus], ["--split", "--precision", "--beam", "--length-penalty", "--coverage-penalty", "--max-len-ratio", "--batch", "--limit", "--attention-samples"]),
 "translate": (["translate", "--checkpoint", ckpt], ["--weights", "--beam", "--length-penalty", "--coverage-penalty", "--max-len-ratio", "--nbest", "--batch", "--max-src-tokens", "--precision", "--cpu-gemm"]),
 "score": (["score", f"{d}/ref", "-i", f"{d}/hyp"], ["-m", "--tokenize", "-s", "--smooth-value", "--chrf-char-order", "--chrf-word-order", "--chrf-beta", "-w", "-f", "--confidence-n", "--paired-bs-n", "--paired-ar-n", "--seed", "--num-refs", "-l", "-e", "-j", "-t"]),
 "ngram": (["ngram", "--smoothing", "interpolated", "--order", "2", "--train", f"{d}/s.es", "--test", f"{d}/s.es"], ["--order", "--smoothing", "--k", "-f"]),
 "shortlist": (["shortlist", "--data", corpus, "--out", "OUT"], ["--first", "--best", "--iters", "--max-sentences", "--split", "--threads"]),
 "encode": (["encode", "--corpus", corpus, "--side", "src"], ["--side", "-i"]),
 "average": (["average", f"{d}/base", "--out", "OUT"], ["--last", "--best"]),
 "translate --shortlist": (["translate", "--checkpoint", ckpt], ["--shortlist"]),
 "translate --lm": (["translate", "--checkpoint", ckpt, "--lm-weight", "0.2"], ["--lm"]),
 "translate --lm-weight": (["translate", "--checkpoint", ckpt, "--lm", lm], ["--lm-weight"]),
 "evaluate --lm-weight": (["evaluate", "--checkpoint", ckpt, "--data", corpus, "--lm", lm], ["--lm-weight"]),
 "translate --rescore": (["translate", "--checkpoint", ckpt], ["--rescore"]),
 "translate --rescore-weights": (["translate", "--checkpoint", ckpt, "--rescore", lm, "--rescore-weights", "1"],
                                 ["--rescore-weights"]),
 "evaluate --rescore": (["evaluate", "--checkpoint", ckpt, "--data", corpus], ["--rescore"]),
 "bench allreduce": (["bench", "allreduce", "--sizes", "1024", "--iters", "2"], ["--sizes", "--iters"]),
 "bench train": (["bench", "train", cfg, "--steps", "1", "--warmup", "0", "--batch", "2"], ["--precisions", "--batch", "--src-len", "--tgt-len", "--src-vocab", "--tgt-vocab", "--warmup", "--steps"]),
}
values = ["-1", "0", "1e30", "99999999999999999999", "nan", "inf", "text", ""]
n = 0
for name, (base, opts) in bases.items():
    for o in opts:
        for v in values:
            n += 1
            args = [a.replace("OUT", f"{d}/o{n}.h5") for a in base] + [o, v]
            try:
                p = subprocess.run([TERN] + args, capture_output=True, text=True, timeout=60, input="the king .\n")
            except subprocess.TimeoutExpired:
                print(f"TIMEOUT {name} {o} {v!r}"); continue
            err = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
            # a missing --lm or --rescore checkpoint, or fewer checkpoints than average asks for: 5
            codes = (0, 2, 4, 5) if name in ("translate --lm", "translate --rescore", "evaluate --rescore",
                                             "average") else (0, 2, 4)
            if p.returncode not in codes or "internal error" in p.stderr or "Exception raised" in p.stderr:
                print(f"BAD {name} {o} {v!r}: exit {p.returncode} {err[-200:]}")
            elif p.returncode == 0 and v not in ("0", "-1", "1e30"):
                print(f"accepted {name} {o} {v!r}")
            elif p.returncode == 0:
                print(f"accepted {name} {o} {v!r} (check)")
print("options: done", n)
