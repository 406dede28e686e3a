"""tern score's command line against sacreBLEU 2.6.0's, byte for byte on stdout: --score-only, --short, --num-refs,
the zh tokenizer (with the ranges sacreBLEU's table really holds), --language-pair, LaTeX tables, systems read from
stdin as tab-separated fields, SACREBLEU_FORMAT, trailing whitespace stripped as sacreBLEU reads lines; and the
refusals of what tern cannot do (MeCab and SentencePiece tokenizers, test sets, other encodings), each with its
reason. sacreBLEU runs in a forked child of this process (common.sacrebleu_cli: its import is paid once)."""
import gzip
import os
import sys

import sacrebleu

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
d = tempdir()


hyps = ["The cat sat on the mat.", "", "It costs $3.14, or 1,000 pesos!", "¡CÓMO está sentada sola la ciudad!",
        "pages 5-6 -- well-known &amp; &quot;quoted&quot;", "Ünïcödé   spaces\u00a0here ", "x", "日本語 の テキスト 。",
        "He said: \"no.\"  ", "a b c d e f g h\x1c", "(hi) «citas» — 2024. €5 + 3 = 8; 50% off…",
        "Ελληνικά, русский; ١٢٣.", "我们在一起。5.", "你好，世界—“test” .5 end", "  .5 起点 ‰ ∑ ⇒ ☃ ㈠ 𠀀 end.",
        "中文 & 符号 _ ^ ~ \\ <b>"]
ref1 = ["The cat sat on a mat.", "Something", "It costs $3.14 or 1,000 pesos!", "¡Cómo está sentada sola la ciudad!",
        "pages 5 - 6 well-known & \"quoted\"", "unicode spaces here", "", "日本語 の テキスト", "He said: \"No.\"",
        "a b c d e f g h", "(hi) «citas» - 2024 . 5 € + 3 = 8 ; 50 % off ...", "Ελληνικά , русский ; ١٢٣ .",
        "我们 在 一起 。 5 .", "你好 ，世界 — “ test ” . 5 end\t ", ".5 起点‰∑⇒☃㈠𠀀 end .", "中文&符号_^~\\<b>"]
ref2 = ["A cat sat on the mat .", "nothing", "It costs 3.14 dollars, or 1000 pesos!", "CÓMO está sola la ciudad",
        "pages 5-6", "Ünïcödé spaces", "x", "日本語", "he said no", "h g f e d c b a", "hi citas 2024", "русский",
        "我们一起", "你好世界", "起点", "中文"]
h2 = [h.upper() if i % 3 == 0 else h for i, h in enumerate(hyps)]
h3 = [h or "y" for h in reversed(hyps)]
write(f"{d}/hyp", hyps)
write(f"{d}/ref1", ref1)
write(f"{d}/ref2", ref2)
write(f"{d}/h_2", h2)
write(f"{d}/h&3", h3)
write(f"{d}/refs2", [a + "\t" + b for a, b in zip(ref1, ref2)])
three = "".join(f"{a.rstrip()}\t{b}\t{c}\n" for a, b, c in zip(hyps, h2, h3))


def same(args, stdin=None, env=None):
    code, theirs, err = sacrebleu_cli(args, stdin, env, cwd=d)
    p = run(["score", *args], expect=None, stdin=stdin, env=env, cwd=d)
    ok = theirs == p.stdout and (code == 0) == (p.returncode == 0)
    check(ok, f"`score {' '.join(args)}`{' (stdin)' if stdin else ''}{' ' + str(env) if env else ''}: "
          f"as sacreBLEU (exit {code}, tern {p.returncode})"
          + ("" if ok else f"\n--- sacrebleu\n{theirs}{err[-500:]}--- tern\n{p.stdout}{p.stderr[-500:]}"))


one_system = [["-b"], ["-b", "-f", "text", "-m", "chrf", "bleu"], ["-b", "-w", "3", "-m", "bleu", "chrf", "ter"],
              ["-sh", "-f", "text", "-m", "bleu", "chrf", "ter"], ["-sh"],
              ["-ci", "-b", "-f", "text", "-m", "bleu", "chrf", "ter", "-cin", "50"],
              ["-ci", "-sh", "-f", "text", "-m", "chrf", "ter", "-cin", "50"],
              ["-tok", "zh", "-lc", "-f", "text", "-w", "4"], ["-l", "en-zh", "-f", "text"],
              ["-l", "en-zh", "-tok", "13a", "-f", "text"], ["-l", "en-ja", "-m", "chrf", "ter"],
              ["-m", "chrf", "--chrf-whitespace", "-w", "4"], ["-m", "chrf", "--chrf-whitespace", "-sl", "-w", "4"],
              ["-sl", "-b"], ["-sl", "-sh", "-tok", "zh", "-w", "3"], ["-f", "latex", "-m", "bleu", "chrf"],
              ["--force", "-q", "-nc", "-e", "UTF-8", "-f", "text"]]
for refs in (["ref1"], ["ref1", "ref2"], ["refs2", "-nr", "2"]):
    for o in one_system if refs == ["ref1"] else one_system[::3]:  # two references: every third case
        same([*refs, "-i", "hyp", *o])
several = [["-f", "latex"], ["-f", "latex", "-sh", "-m", "bleu", "chrf", "ter"], ["-sh", "-f", "text", "-tok", "zh"],
           ["-b"], ["-pbs", "-pbsn", "100", "-f", "latex", "-m", "bleu", "chrf"],
           ["-par", "-parn", "200", "-f", "latex", "-sh"], ["-pbs", "-pbsn", "100", "-f", "text", "-sh", "-m", "ter"]]
for refs in (["ref1"], ["refs2", "-nr", "2"]):
    for o in several if refs == ["ref1"] else several[::2]:
        same([*refs, "-i", "hyp", "h_2", "h&3", *o])
        same([*refs, *o], stdin=three)
same(["ref1", "-f", "text"], stdin=open(f"{d}/hyp", encoding="utf-8").read())
same(["ref1", "-i", "hyp", "h_2"], env={"SACREBLEU_FORMAT": "TEXT"})
same(["ref1", "-i", "hyp", "h_2", "-f", "text"], env={"SACREBLEU_FORMAT": "latex"})
same(["ref1", "-i", "hyp"], env={"SACREBLEU_FORMAT": "bogus"})
same(["ref1", "-i", "hyp", "hyp", "h_2", "-pbs", "-pbsn", "50", "-f", "text"])  # the baseline again: ignored
# TER: sacreBLEU tokenizes references twice, and the tercom tokenizer is not idempotent ("x's\u3000y" -> "x's y" ->
# "x 's y"; "İ" lowercases to two code points): a line scored against itself is not 0 there, nor here.
write(f"{d}/ter_twice", ["x's\u3000y", ",j\u2028&amp;[C︐⩭—'s\u3000)&amp;İ&amp;-d", "a's\u2003b 's c", "İstanbul's\u3000"])
for o in (["-sl", "-w", "4"], ["-w", "4"], ["--ter-asian-support", "-sl", "-w", "4"], ["--ter-no-punct", "-w", "4"]):
    same(["ter_twice", "-i", "ter_twice", "-m", "ter", "--ter-normalized", *o])
# Lowercasing as Python's str.lower(): 'İ' becomes "i\u0307" and 'Σ' a final 'ς' at the end of a word (case-ignorable
# marks skipped); per code point these made chrF 54.2 and BLEU 19.1 of a 100.0 pair.
write(f"{d}/greek", ["ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ Σ ΑΣ. ΑΣ\u0301 İstanbul İ", "ΣΟΦΟΣ'Σ Α.Σ.Κ ΣΣ aΣb"])
write(f"{d}/greek_lower", ["οδος και σοφια σ ας. ας\u0301 i\u0307stanbul i\u0307", "σοφος'σ α.σ.κ σς aσb"])
for o in (["-lc", "-w", "4"], ["-m", "chrf", "--chrf-lowercase", "-sl", "-w", "4"], ["-m", "ter", "-w", "4"],
          ["-m", "chrf", "-cw", "2", "--chrf-lowercase", "-w", "4"]):
    same(["greek_lower", "-i", "greek", *o])
# An option given twice: the last, as argparse takes it.
same(["ref1", "-i", "h_2", "-i", "hyp", "-m", "ter", "-m", "chrf", "bleu", "-w", "2", "-w", "3", "-f", "text"])
for name in ("ref1", "ref2", "hyp"):  # gzip-compressed files, as sacreBLEU reads them
    with open(f"{d}/{name}", "rb") as f, gzip.open(f"{d}/{name}.gz", "wb") as g:
        g.write(f.read())
same(["ref1.gz", "ref2.gz", "-i", "hyp.gz", "-m", "bleu", "chrf", "ter", "-f", "text"])

# What sacreBLEU refuses, tern refuses, naming the line; what tern cannot do, with the reason and exit 2.
p = run(["score", "ref1"], expect=4, stdin="a\tb\nc\n", cwd=d)
check("stdin:2: 1 tab-separated hypotheses, but line 1 has 2" in p.stderr, "stdin systems: field counts differ")
p = run(["score", "refs2", "-nr", "3", "-i", "hyp"], expect=4, cwd=d)
check("refs2:1: 2 tab-separated reference(s), but --num-refs is 3" in p.stderr, "--num-refs: too few references")
p = run(["score", "ref1", "ref2", "-nr", "2", "-i", "hyp"], expect=2, cwd=d)
check("--num-refs 2 reads tab-separated references from one file, but 2 reference files" in p.stderr,
      "--num-refs with several files refused")
for args, says in [(["-tok", "ja-mecab"], "needs MeCab"), (["-l", "en-ko"], "ko-mecab needs MeCab"),
                   (["-tok", "flores200"], "(spBLEU) is not available"), (["-tok", "spBLEU-1K"], "is not available"),
                   (["-tok", "xyz"], "BLEU tokenizer must be 13a, intl, char, zh or none (got xyz)"),
                   (["-l", "en"], "--language-pair must be SOURCE-TARGET, e.g. en-de (got 'en')"),
                   (["-e", "latin-1"], "tern reads UTF-8 text only"), (["-t", "wmt14"], "need a download"),
                   (["-nr", "0"], "--num-refs must be between 1 and 10,000 (got 0)"),
                   (["-f", "xml"], "score format must be json, text or latex (got xml)")]:
    p = run(["score", "ref1", "-i", "hyp", *args], expect=2, cwd=d)
    check(says in p.stderr, f"{' '.join(args)} refused: {p.stderr.strip()[-160:]}")
p = run(["score", "ref1", "-i", "hyp", "-l", "en-zh", "-tok", "13a", "-f", "text"], cwd=d)
check("consider using the 'zh' or 'spm' tokenizer for Chinese" in p.stderr, "a zh target with 13a: warned")

# Versions: sacreBLEU's -V line (scripts parse it) and tern's own.
p = run(["score", "-V"])
check(p.stdout.startswith(f"sacrebleu {sacrebleu.__version__} (tern score"), f"score -V: {p.stdout.strip()}")
p = run(["--version"])
check(p.stdout.startswith("tern ") and "sacreBLEU 2.6.0" in p.stdout, f"tern --version: {p.stdout.strip()}")

# Output left tokenized: 100 lines that end in " ." are warned about (sacreBLEU's check), --force silences it.
write(f"{d}/tok_hyp", [f"line {i} ." for i in range(100)])
write(f"{d}/tok_ref", [f"line {i}." for i in range(100)])
p = run(["score", "tok_ref", "-i", "tok_hyp"], cwd=d)
check("100 of its 100 lines end in a tokenized period" in p.stderr, "tokenized output warned about")
p = run(["score", "tok_ref", "-i", "tok_hyp", "--force"], cwd=d)
check("tokenized period" not in p.stderr, "--force: no warning")
finish()
