"""tern score against sacreBLEU 2.6.0: BLEU, chrF, chrF++ and TER on vectors with empty lines, punctuation, numbers and
non-ASCII text, every tokenizer, lowercase, multiple references, sentence level; scores equal to 1e-6 and the
printed output identical to sacreBLEU's command line."""
import json
import os
import subprocess
import sys

import sacrebleu

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
d = tempdir()
hyps = ["The cat sat on the mat.", "", "It costs $3.14, or 1,000 pesos!", "¡CÓMO está sentada sola la ciudad!",
        "pages 5-6 -- well-known &amp; &quot;quoted&quot;", "Ünïcödé   spaces\u00a0here ", "x", "日本語 の テキスト 。",
        "He said: \"no.\"", "a b c d e f g h", "(hi) «citas» — 2024. €5 + 3 = 8; 50% off…", "Ελληνικά, русский; ١٢٣."]
ref1 = ["The cat sat on a mat.", "Something", "It costs $3.14 or 1,000 pesos!", "¡Cómo está sentada sola la ciudad!",
        "pages 5 - 6 well-known & \"quoted\"", "unicode spaces here", "", "日本語 の テキスト", "He said: \"No.\"",
        "a b c d e f g h", "(hi) «citas» - 2024 . 5 € + 3 = 8 ; 50 % off ...", "Ελληνικά , русский ; ١٢٣ ."]
ref2 = ["A cat sat on the mat .", "", "It costs 3.14 dollars, or 1000 pesos!", "CÓMO está sola la ciudad",
        "pages 5-6", "Ünïcödé spaces", "x", "日本語", "he said no", "h g f e d c b a", "hi citas 2024", "русский"]
write(f"{d}/hyp", hyps)
write(f"{d}/ref1", ref1)
write(f"{d}/ref2", ref2)


def cli_lines(lines):  # sacreBLEU's command line reads each line with str.rstrip(), as tern score does
    return [l.rstrip() for l in lines]

# Scores through the Python API, 1e-6.
cases = [([], [ref1], {}), (["-lc"], [ref1], {"lowercase": True}), ([], [ref1, ref2], {}),
         (["-s", "none"], [ref1], {"smooth_method": "none"}), (["-s", "floor"], [ref1, ref2], {"smooth_method": "floor"}),
         (["-s", "add-k"], [ref1], {"smooth_method": "add-k"})]
for tok in ("13a", "intl", "char", "zh", "none"):
    cases += [(["-tok", tok], [ref1], {"tokenize": tok}), (["-tok", tok, "-lc"], [ref1, ref2], {"tokenize": tok, "lowercase": True})]
for i in range(len(hyps)):  # sentence-by-sentence corpora exercise zero-count paths
    cases.append(([], [[ref1[i]]], {"_one": i}))
    cases.append((["-tok", "intl"], [[ref1[i]]], {"_one": i, "tokenize": "intl"}))


def files_for(refs, h):
    names = []
    for k, r in enumerate(refs):
        write(f"{d}/r{k}", r)
        names.append(f"{d}/r{k}")
    write(f"{d}/h", h)
    return names


for args, refs, kw in cases:
    one = kw.pop("_one", None)
    h = hyps if one is None else [hyps[one]]
    files = files_for(refs, h)
    ours = json.loads(run(["score", *files, "-i", f"{d}/h", "-f", "json", "-w", "12", *args]).stdout)
    m = sacrebleu.metrics.BLEU(**kw)
    theirs = m.corpus_score(cli_lines(h), [cli_lines(r) for r in refs])
    check(abs(ours["score"] - theirs.score) < 1e-6,
          f"BLEU {args} nrefs={len(refs)} one={one}: {ours['score']:.8f} vs {theirs.score:.8f}")
    check(ours["signature"] == str(m.get_signature()), f"signature {ours['signature']}")

chrf_cases = [([], {}), (["-cw", "2"], {"word_order": 2}), (["--chrf-lowercase"], {"lowercase": True}),
              (["--chrf-whitespace"], {"whitespace": True}), (["--chrf-eps-smoothing", "-cw", "2"], {"eps_smoothing": True, "word_order": 2}),
              (["-cc", "4", "-cw", "1", "--chrf-beta", "1"], {"char_order": 4, "word_order": 1, "beta": 1})]
for args, kw in chrf_cases:
    for refs in ([ref1], [ref1, ref2]):
        files = files_for(refs, hyps)
        m = sacrebleu.metrics.CHRF(**kw)
        ours = json.loads(run(["score", *files, "-i", f"{d}/h", "-m", "chrf", "-w", "12", *args]).stdout)
        theirs = m.corpus_score(cli_lines(hyps), [cli_lines(r) for r in refs])
        check(abs(ours["score"] - theirs.score) < 1e-6 and ours["name"] == theirs.name,
              f"{theirs.name} {args} nrefs={len(refs)}: {ours['score']:.8f} vs {theirs.score:.8f}")
        check(ours["signature"] == str(m.get_signature()), f"signature {ours['signature']}")
        # Sentence level: every segment alone, which exercises the zero-count and empty-line paths.
        lines = run(["score", *files, "-i", f"{d}/h", "-m", "chrf", "-sl", "-w", "12", *args]).stdout.splitlines()
        worst = max(abs(float(l.split(" = ")[1]) - m.sentence_score(h, [r[i].rstrip() for r in refs]).score)
                    for i, (h, l) in enumerate(zip(cli_lines(hyps), lines)))
        check(len(lines) == len(hyps) and worst < 1e-6, f"{theirs.name} {args} nrefs={len(refs)} per sentence: {worst:.2e}")

# The printed output, byte for byte, against sacreBLEU's own command line.
cli_cases = [[], ["-f", "text"], ["-m", "bleu", "chrf"], ["-m", "chrf", "bleu", "-f", "text", "-w", "3"],
             ["-m", "chrf", "-cw", "2", "-f", "text"], ["-tok", "intl", "-lc"], ["-sl"], ["-m", "chrf", "-sl", "-w", "4"],
             ["-tok", "char", "-m", "bleu", "chrf", "-w", "2"],
             # TER: the tercom tokenizer's options, per sentence, with the other metrics
             ["-m", "ter"], ["-m", "ter", "-sl", "-w", "4"], ["-m", "ter", "--ter-normalized", "--ter-asian-support", "-f", "text"],
             ["-m", "ter", "--ter-no-punct", "--ter-case-sensitive", "-w", "6"], ["-m", "bleu", "chrf", "ter", "-f", "text"],
             ["-m", "ter", "--ter-normalized", "--ter-no-punct", "--ter-asian-support", "-sl", "-w", "6"]]
for refs in ([f"{d}/ref1"], [f"{d}/ref1", f"{d}/ref2"]):
    for args in cli_cases:
        ours = run(["score", *refs, "-i", f"{d}/hyp", *args]).stdout
        theirs = subprocess.run([sys.executable, "-m", "sacrebleu", *refs, "-i", f"{d}/hyp", *args],
                                capture_output=True, text=True).stdout
        check(ours == theirs, f"same output as `sacrebleu {' '.join(args)}` with {len(refs)} reference(s)"
              + ("" if ours == theirs else f"\n--- tern\n{ours}--- sacrebleu\n{theirs}"))

# stdin and the text format.
p = run(["score", f"{d}/ref1", "-f", "text"], stdin="\n".join(hyps) + "\n")
theirs = sacrebleu.corpus_bleu(hyps, [ref1])
check(p.stdout.startswith("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = ")
      and f"{theirs.score:.1f}" in p.stdout, f"text output from stdin: {p.stdout.strip()}")
# Bad input: reference with fewer lines; unknown metric or tokenizer; two metrics at sentence level.
write(f"{d}/short", ref1[:3])
p = run(["score", f"{d}/short", "-i", f"{d}/hyp"], expect=4)
check(f"has 3 lines but there are {len(hyps)} hypotheses" in p.stderr, "line-count mismatch is an error")
p = run(["score", f"{d}/ref1", "-i", f"{d}/hyp", "-m", "meteor"], expect=2)
check("score metric must be bleu, chrf or ter (got meteor)" in p.stderr, "unknown metric named")
p = run(["score", f"{d}/ref1", "-i", f"{d}/hyp", "-tok", "zh-x"], expect=2)
check("BLEU tokenizer must be 13a, intl, char, zh or none (got zh-x)" in p.stderr, "unknown tokenizer named")
p = run(["score", f"{d}/ref1", "-i", f"{d}/hyp", "-m", "bleu", "chrf", "-sl"], expect=2)
check("sentence-level scoring takes one metric" in p.stderr, "sentence level with two metrics refused")
finish()
