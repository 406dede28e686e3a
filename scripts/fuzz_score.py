#!/usr/bin/env python3
"""Differential fuzzer of `tern score` against sacreBLEU 2.6.0's command line (run by hand): random lines from a pool
of the characters tokenizers treat specially (ASCII punctuation, entities, Unicode whitespace, CJK and the zh table's
range ends, combining marks, Turkish dotted I, Arabic digits, emoji, "'s"), random metrics and options (every
tokenizer, lowercase, chrF whitespace, TER's options, -b, -sh, text/latex, sentence level, confidence, paired tests),
1-3 systems from files or stdin, 1-2 references from files or --num-refs; prints each case whose stdout or success
differs. A sacreBLEU crash writing float32 values to JSON is skipped (tern writes the number).

  python3 scripts/fuzz_score.py [SEED] [CASES]     # e.g. 3 300: ~10 minutes on 2 cores
"""
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "cli"))
from common import sacrebleu_cli  # noqa: E402

T = os.path.abspath(os.environ.get("TERN", "build/cli/tern"))
d = tempfile.mkdtemp(prefix="tern_fuzz_score_")
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
pool = list("abcdefghij ABC .,;:!?-'\"()[]{}&<>/%$#_^~\\0123456789") + ["&amp;", "&quot;", "&lt;", "<skipped>", "-\n"[:1],
        "\u00a0", "\u2000", "\u2003", "\u3000", "\x1c", "\x1f", "\x85", "\u2028", "\t", "中", "文", "。", "，", "“", "”", "‰", "∑", "⇒",
        "☃", "㈠", "𠀀", "ｱ", "ﬁ", "é", "e\u0301", "İ", "ß", "Σ", "ς", "ΟΔΟΣ", "ΣΑ", "Α\u0301Σ", "١", "٢", "😀", "—", "…", "€", "'s", " 's", "  ", "..", "5.", ",5",
        "\u2001", "\u2a6d", "\u2a6e", "\u2f81", "\u2fa1", "\u2fa2", "\u2f80", "\u3400", "\u4db5", "\u4db6", "\ufe10", "\ufe4f"]
def line():
    n = rng.randint(0, 25)
    s = "".join(rng.choice(pool) for _ in range(n))
    if rng.random() < 0.2: s += rng.choice([" ", "\u00a0", " .", "\x1c", "\t"])
    return s.replace("\n", " ").replace("\r", " ")
opts_pool = [["-tok", "zh"], ["-tok", "intl"], ["-tok", "char"], ["-tok", "none"], ["-lc"], ["-m", "chrf"], ["-m", "ter"],
             ["-m", "bleu", "chrf", "ter"], ["-m", "chrf", "--chrf-whitespace"], ["-cw", "2", "-m", "chrf"], ["-b"], ["-sh"],
             ["-f", "text"], ["-f", "latex"], ["-w", "3"], ["-sl"], ["-ci", "-cin", "20"], ["-l", "en-zh"], ["--ter-normalized", "-m", "ter"],
             ["--ter-asian-support", "--ter-normalized", "-m", "ter"], ["--ter-no-punct", "-m", "ter"], ["-s", "floor"], ["-s", "none"], ["-m", "chrf", "--chrf-lowercase"],
             ["-lc", "-tok", "char"], ["--ter-case-sensitive", "-m", "ter"]]
fails = 0
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100
for case in range(N):
    n = rng.randint(1, 8)
    nsys = rng.choice([1, 1, 2, 3])
    nref = rng.choice([1, 1, 2])
    use_nr = nref == 2 and rng.random() < 0.5
    use_stdin = rng.random() < 0.3
    systems = [[line() for _ in range(n)] for _ in range(nsys)]
    refs = [[line() for _ in range(n)] for _ in range(nref)]
    for k, r in enumerate(refs):
        open(f"{d}/r{k}", "w", encoding="utf-8").write("".join(x + "\n" for x in r))
    if use_nr:
        open(f"{d}/rr", "w", encoding="utf-8").write("".join(a + "\t" + b + "\n" for a, b in zip(*refs)))
    for k, s in enumerate(systems):
        open(f"{d}/s{k}", "w", encoding="utf-8").write("".join(x + "\n" for x in s))
    opts = []
    for _ in range(rng.randint(0, 3)):
        opts += rng.choice(opts_pool)
    if nsys > 1 and rng.random() < 0.5:
        opts += rng.choice([["-pbs", "-pbsn", "30"], ["-par", "-parn", "40"]])
    args = (["rr", "-nr", "2"] if use_nr else [f"r{k}" for k in range(nref)])
    stdin = None
    if use_stdin:
        stdin = "".join("\t".join(s[i] for s in systems) + "\n" for i in range(n))
    else:
        args += ["-i"] + [f"s{k}" for k in range(nsys)]
    args += opts
    code, theirs, err = sacrebleu_cli(args, stdin, cwd=d)
    p = subprocess.run([T, "score", *args], capture_output=True, text=True, input=stdin, cwd=d)
    if "Traceback" in err and "not JSON serializable" in err:
        continue
    if theirs != p.stdout or (code == 0) != (p.returncode == 0):
        fails += 1
        print(f"=== case {case} DIFF exit {code} vs {p.returncode}: {args!r} stdin={stdin!r}")
        print("refs", refs, "systems", systems)
        print("--- sacrebleu\n" + theirs + err[-300:] + "\n--- tern\n" + p.stdout + p.stderr[-300:])
print(f"{N} cases, {fails} differ")
