"""tern score against sacreBLEU 2.6.0 on vectors with empty lines, punctuation, numbers and non-ASCII text."""
import json
import os
import sys

import sacrebleu

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
d = tempdir()
hyps = ["The cat sat on the mat.", "", "It costs $3.14, or 1,000 pesos!", "¡CÓMO está sentada sola la ciudad!",
        "pages 5-6 -- well-known &amp; &quot;quoted&quot;", "Ünïcödé   spaces\u00a0here ", "x", "日本語 の テキスト 。",
        "He said: \"no.\"", "a b c d e f g h"]
ref1 = ["The cat sat on a mat.", "Something", "It costs $3.14 or 1,000 pesos!", "¡Cómo está sentada sola la ciudad!",
        "pages 5 - 6 well-known & \"quoted\"", "unicode spaces here", "", "日本語 の テキスト", "He said: \"No.\"",
        "a b c d e f g h"]
ref2 = ["A cat sat on the mat .", "", "It costs 3.14 dollars, or 1000 pesos!", "CÓMO está sola la ciudad",
        "pages 5-6", "Ünïcödé spaces", "x", "日本語", "he said no", "h g f e d c b a"]
write(f"{d}/hyp", hyps)
write(f"{d}/ref1", ref1)
write(f"{d}/ref2", ref2)
cases = [([], [ref1], {}), (["-lc"], [ref1], {"lowercase": True}), (["-tok", "none"], [ref1], {"tokenize": "none"}),
         ([], [ref1, ref2], {}), (["-s", "none"], [ref1], {"smooth_method": "none"}),
         (["-s", "floor"], [ref1, ref2], {"smooth_method": "floor"}), (["-s", "add-k"], [ref1], {"smooth_method": "add-k"})]
for i in range(len(hyps)):  # sentence-by-sentence corpora exercise zero-count paths
    cases.append(([], [[ref1[i]]], {"_one": i}))
for args, refs, kw in cases:
    one = kw.pop("_one", None)
    h = hyps if one is None else [hyps[one]]
    files = []
    for k, r in enumerate(refs):
        write(f"{d}/r{k}", r)
        files.append(f"{d}/r{k}")
    write(f"{d}/h", h)
    p = run(["score", *files, "-i", f"{d}/h", "-f", "json", "-w", "12", *args])
    ours = json.loads(p.stdout)
    m = sacrebleu.metrics.BLEU(**kw)
    theirs = m.corpus_score(h, refs)
    sig = str(m.get_signature())
    check(abs(ours["score"] - theirs.score) < 1e-6, f"BLEU {args} nrefs={len(refs)} one={one}: {ours['score']:.8f} vs {theirs.score:.8f}")
    check(ours["signature"] == sig, f"signature {ours['signature']} == {sig}")
# stdin and the text format.
p = run(["score", f"{d}/ref1"], stdin="\n".join(hyps) + "\n")
theirs = sacrebleu.corpus_bleu(hyps, [ref1])
check(p.stdout.startswith("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = ")
      and f"{theirs.score:.1f}" in p.stdout, f"text output from stdin: {p.stdout.strip()}")
# Bad input: reference with fewer lines.
write(f"{d}/short", ref1[:3])
p = run(["score", f"{d}/short", "-i", f"{d}/hyp"], expect=4)
check("has 3 lines but there are 10 hypotheses" in p.stderr, "line-count mismatch is an error")
finish()
