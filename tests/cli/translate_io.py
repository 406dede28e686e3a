"""tern translate -i FILE -o FILE gives what stdin/stdout gives; a missing input or an unwritable output is refused
with its exit code and leaves no partial file; --no-unk decodes; --checkpoint A B decodes as an ensemble; tern bench
translate reports per setting, --alignment links words, --word-scores scores them, --coverage-penalty re-ranks, --prefix starts translations, --score-target scores given ones, decodes the same with several workers, and refuses bad values and foreign
vocabularies; --int8 decodes and is refused with another precision."""
import gzip
import json
import math
import os
import select
import signal
import subprocess
import time

from common import *  # noqa: F403

d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, f"{d}/run")
run(["train", cfg, "--no-progress", "--set", "train.max_steps=10"])
ckpt = f"{d}/run/ckpt_step00000010.tern"
src = "the king said unto him .\nand they went into the city .\nlight\n"
write(f"{d}/in.txt", src.splitlines())
piped = run(["translate", "--checkpoint", ckpt], stdin=src).stdout
run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/out.txt"])
check(open(f"{d}/out.txt").read() == piped and len(piped.splitlines()) == 3, "-i/-o equals stdin/stdout")
# gzip: an input .gz is read as its text, an output named .gz is written compressed (as Marian does).
with gzip.open(f"{d}/in.txt.gz", "wt", encoding="utf-8") as f:
    f.write(src)
run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt.gz", "-o", f"{d}/out.txt.gz"])
check(gzip.open(f"{d}/out.txt.gz", "rt", encoding="utf-8").read() == piped, "-i in.gz -o out.gz: the same translations")
# A device is written through (not replaced by a file in /dev); a link to a file keeps being a link.
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", "/dev/stdout"])
check(p.stdout == piped and os.path.islink("/dev/stdout"), "-o /dev/stdout prints the translations")
# "-" is standard input and output, as for most Unix tools (not a file named "-").
p = run(["translate", "--checkpoint", ckpt, "-i", "-", "-o", "-"], stdin=src, cwd=d)
check(p.stdout == piped and not os.path.exists(f"{d}/-"), "-i - -o - read stdin and print the translations")
# A program that writes a line to tern's stdin and waits for its translation gets it (the lines gathered are
# translated when the input pauses; before, tern waited for a batch of 128 lines or the end of the input).
talk = subprocess.Popen([TERN, "translate", "--checkpoint", ckpt], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, text=True, bufsize=1)
answers = []
for line in src.splitlines()[:2]:
    talk.stdin.write(line + "\n")
    talk.stdin.flush()
    ready, _, _ = select.select([talk.stdout], [], [], 120 * TIMEOUT_SCALE)  # a hang, not a speed, is what fails
    answers.append(talk.stdout.readline() if ready else None)
talk.stdin.close()
check(answers == piped.splitlines(keepends=True)[:2] and talk.wait(timeout=120) == 0,
      f"stdin answered line by line ({answers})")
# An existing output is refused, and kept, unless --overwrite.
write(f"{d}/old.txt", ["keep me"])
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/old.txt"], expect=7)
check("old.txt: -o: output exists; pass --overwrite" in p.stderr and open(f"{d}/old.txt").read() == "keep me\n",
      f"existing -o refused and kept ({p.stderr.strip()[-120:]})")
run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/old.txt", "--overwrite"])
check(open(f"{d}/old.txt").read() == piped, "--overwrite replaces it")
os.symlink(f"{d}/out.txt", f"{d}/link.txt")
run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/link.txt", "--overwrite"])
check(os.path.islink(f"{d}/link.txt") and open(f"{d}/out.txt").read() == piped, "-o LINK writes the file it names")
# -o streams into a temporary that replaces the file at the end: a bad line after several chunks were written (batch
# 1, one worker: chunks of 4 lines) stops the job with the old file intact and no temporary left.
lines = src.splitlines() * 5
with open(f"{d}/late_bad.txt", "wb") as f:
    f.write(("\n".join(lines) + "\n").encode() + b"bad \xff byte\n")
p = run(["translate", "--checkpoint", ckpt, "--batch", "1", "-i", f"{d}/late_bad.txt", "-o", f"{d}/old.txt",
         "--overwrite"], expect=4, env={"OMP_NUM_THREADS": "1"})
check("late_bad.txt:16: invalid UTF-8" in p.stderr and open(f"{d}/old.txt").read() == piped
      and not [n for n in os.listdir(d) if ".tmp-" in n],
      f"a failure after chunks were written keeps the old -o file, no temporary left ({p.stderr.strip()[-120:]})")
run(["translate", "--checkpoint", ckpt, "--batch", "1", "-i", f"{d}/late_bad.txt", "-o", f"{d}/many.txt.gz"], expect=4,
    env={"OMP_NUM_THREADS": "1"})
check(not os.path.exists(f"{d}/many.txt.gz") and not [n for n in os.listdir(d) if ".tmp-" in n],
      "nor a new .gz output")
# ... and what is translated is on disk as it comes (memory stays bounded): with lines from a pipe that pauses, the
# temporary holds their translations before the input ends.
live = subprocess.Popen([TERN, "translate", "--checkpoint", ckpt, "-o", f"{d}/live.txt"], stdin=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, text=True)
live.stdin.write("\n".join(src.splitlines()[:2]) + "\n")
live.stdin.flush()
streamed, deadline = False, time.time() + 120 * TIMEOUT_SCALE
while not streamed and time.time() < deadline and live.poll() is None:
    tmp = [n for n in os.listdir(d) if n.startswith("live.txt.tmp-")]
    streamed = bool(tmp) and open(f"{d}/{tmp[0]}").read().count("\n") == 2
    time.sleep(0.1)
live.stdin.close()
live.wait(timeout=300)
check(streamed and live.returncode == 0 and open(f"{d}/live.txt").read() == "".join(piped.splitlines(True)[:2]),
      "-o FILE: translations reach the temporary as they come, the file at the end")
# Stopped by SIGTERM (a batch system) or SIGINT (Ctrl-C) midway, it leaves neither the output nor its temporary.
for sig in (signal.SIGTERM, signal.SIGINT):
    stop = subprocess.Popen([TERN, "translate", "--checkpoint", ckpt, "-o", f"{d}/stopped.txt"], stdin=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    stop.stdin.write(src)
    stop.stdin.flush()
    deadline = time.time() + 120 * TIMEOUT_SCALE
    while time.time() < deadline and not [n for n in os.listdir(d) if n.startswith("stopped.txt.tmp-")]:
        time.sleep(0.1)
    stop.send_signal(sig)
    stop.wait(timeout=300)
    check(stop.returncode == -sig and not [n for n in os.listdir(d) if n.startswith("stopped.txt")],
          f"translate -o stopped by {sig.name}: no output, no temporary (exit {stop.returncode})")
if os.path.exists("/dev/full"):  # a full disk: a file error naming the output, exit 7
    p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", "/dev/full"], expect=7)
    check("/dev/full: write failed" in p.stderr, f"-o on a full device refused ({p.stderr.strip()[-120:]})")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/missing.txt"], expect=4)
check("missing.txt" in p.stderr, f"missing input named ({p.stderr.strip()[-120:]})")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/nodir/out.txt"], expect=7)
check("nodir/out.txt" in p.stderr and not os.path.exists(f"{d}/nodir"), "unwritable output refused")
nounk = run(["translate", "--checkpoint", ckpt, "--no-unk", "-i", f"{d}/in.txt"]).stdout
check(len(nounk.splitlines()) == 3 and "\u2047" not in nounk, "--no-unk output has no unknown-piece mark")
# --min-len and --no-repeat-ngram-size reach the search (tests/translation/test_decode.cpp checks what they do).
long = run(["translate", "--checkpoint", ckpt, "--min-len", "12", "--no-repeat-ngram-size", "2", "-i", f"{d}/in.txt"])
check(len(long.stdout.splitlines()) == 3 and all(len(l.split()) >= 2 for l in long.stdout.splitlines()),
      f"--min-len 12 --no-repeat-ngram-size 2 translate ({long.stdout!r})")
# --sampling (back-translation): reproducible by --seed; its options need it; it searches nothing (--beam 1).
draw = ["translate", "--checkpoint", ckpt, "--sampling", "--sampling-topk", "5", "--temperature", "1.5", "-i", f"{d}/in.txt"]
a, b = run([*draw, "--seed", "3"]).stdout, run([*draw, "--seed", "3"]).stdout
check(a == b and len(a.splitlines()) == 3, "--sampling with one --seed gives one output")
for args, needle in ((["--seed", "3"], "--seed needs --sampling"), (["--sampling", "--beam", "3"], "it needs --beam 1")):
    p = run(["translate", "--checkpoint", ckpt, *args, "-i", f"{d}/in.txt"], expect=2)
    check(needle in p.stderr, f"{' '.join(args)} refused ({p.stderr.strip()[-100:]})")
for flag, value in (("--min-len", "-1"), ("--no-repeat-ngram-size", "-2")):
    p = run(["translate", "--checkpoint", ckpt, flag, value, "-i", f"{d}/in.txt"], expect=2)
    check(f"{flag} must be in" in p.stderr, f"{flag} {value} refused ({p.stderr.strip()[-100:]})")
# --alignment: the same translations, each followed by " ||| " and "i-j" links of source word i and translation word
# j, every translation word linked, no index out of its line; an empty line gets " ||| "; n-best and ensembles too.
write(f"{d}/in2.txt", [*src.splitlines(), "", "the  king\t went ."])
plain = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in2.txt"]).stdout.splitlines()
for extra in ([], ["--nbest", "2", "--checkpoint", ckpt]):
    aligned = run(["translate", "--checkpoint", ckpt, "--alignment", *extra, "-i", f"{d}/in2.txt"]).stdout.splitlines()
    ok = len(aligned) == len(plain)
    for k, (line, source) in enumerate(zip(aligned, [*src.splitlines(), "", "the king went ."])):
        for hyp in (line.split("\t")[::2] if extra else [line]):
            text, sep, links = hyp.partition(" ||| ")
            pairs = [tuple(map(int, p.split("-"))) for p in links.split()]
            ok = ok and sep and (extra or text == plain[k])
            ok = ok and all(i < len(source.split()) and j < len(text.split()) for i, j in pairs)
            ok = ok and {j for _, j in pairs} == set(range(len(text.split())))
    check(ok, f"--alignment {' '.join(extra)}: links within each line, every word linked ({aligned})")

# --word-scores: " ||| " and one log-probability a word of the translation (its subword tokens' sum), </s>'s last,
# after --alignment's links; with no length penalty they sum to the n-best score; an empty line gets empty sections.
scored = run(["translate", "--checkpoint", ckpt, "--word-scores", "--alignment", "--nbest", "2", "--beam", "3",
              "--length-penalty", "0", "-i", f"{d}/in2.txt"]).stdout.splitlines()
ok = len(scored) == len(plain) and scored[len(src.splitlines())] == " |||  ||| "
for line in scored[:len(src.splitlines())]:
    fields = line.split("\t")
    for hyp, total in zip(fields[::2], fields[1::2]):
        text, links, steps = hyp.split(" ||| ")
        values = [float(x) for x in steps.split()]
        ok = ok and len(values) in (len(text.split()), len(text.split()) + 1) and all(v <= 0 for v in values)
        ok = ok and abs(sum(values) - float(total)) < 1e-3 * len(values)
check(ok, f"--word-scores: a log-probability a word and </s>, summing to the score ({scored[:1]})")
# --coverage-penalty (GNMT's beta): the n-best scores gain beta * sum log min(coverage, 1) <= 0, so with it no score is
# above the same hypothesis's score without it; --sampling refuses it; evaluate records it.
# Sources of 30+ words and hypotheses cut at 10 tokens (--max-len-ratio 0.01): some source words stay under 1.
write(f"{d}/long.txt", [" ".join([line] * 5) for line in src.splitlines()[:2]])


def nbest_scores(extra):
    out = run(["translate", "--checkpoint", ckpt, "--nbest", "3", "--beam", "3", "--max-len-ratio", "0.01", "-i",
               f"{d}/long.txt"] + extra).stdout
    return [dict(zip(f[::2], map(float, f[1::2]))) for f in (line.split("\t") for line in out.splitlines())]
without, with_cov = nbest_scores([]), nbest_scores(["--coverage-penalty", "0.5"])
shared = [(a[h], b[h]) for a, b in zip(without, with_cov) for h in a if h in b]
check(shared and all(c <= w + 1e-6 for w, c in shared) and any(c < w - 1e-6 for w, c in shared),
      f"--coverage-penalty lowers scores, never raises them ({shared[:4]})")
p = run(["translate", "--checkpoint", ckpt, "--sampling", "--beam", "1", "--coverage-penalty", "0.2", "-i",
         f"{d}/in.txt"], expect=2)
check("--coverage-penalty re-ranks a beam's ended hypotheses: --sampling draws one" in p.stderr, "sampling refuses it")
ev = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--split", "test", "--limit", "5",
                     "--coverage-penalty", "0.3"]).stdout)
check(ev["translation"]["coverage_penalty"] == 0.3, f"evaluate records it ({ev['translation']})")
# --prefix FILE: each translation starts with its line's prefix (an empty line: none), with any search; the file must
# have a line for each input line, from a file or stdin; -o may not replace it.
write(f"{d}/prefix.txt", ["el_cityo el_kingo", "", "el_lighto"])
for extra in ([], ["--beam", "1"], ["--nbest", "2", "--beam", "3", "--alignment"], ["--sampling", "--beam", "1"]):
    free = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt"] + extra).stdout.splitlines()
    pre = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--prefix", f"{d}/prefix.txt"] + extra)
    pre = pre.stdout.splitlines()
    starts = len(pre) == 3 and pre[1] == free[1]
    for line, prefix in ((pre[0], "el_cityo el_kingo"), (pre[2], "el_lighto")):
        starts = starts and all(h.startswith(prefix) for h in line.split("\t")[::2])
    check(starts, f"--prefix {' '.join(extra)}: every translation starts with its prefix ({pre})")
p = run(["translate", "--checkpoint", ckpt, "--prefix", f"{d}/prefix.txt"], stdin=src)
check(p.stdout.splitlines()[0].startswith("el_cityo el_kingo"), "--prefix with the input on stdin")
write(f"{d}/prefix2.txt", ["el_cityo", ""])
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--prefix", f"{d}/prefix2.txt"], expect=4)
check(f"{d}/prefix2.txt: ends after 2 line(s), but {d}/in.txt has a line 3: --prefix must hold one line, a target "
      "prefix, for each input line" in p.stderr, f"a short prefix file ({p.stderr.strip()[-200:]})")
write(f"{d}/prefix4.txt", ["a", "b", "c", "d"])
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--prefix", f"{d}/prefix4.txt", "-o",
         f"{d}/never.txt"], expect=4)
check("prefix4.txt: has more lines than the 3 line(s) of" in p.stderr and not os.path.exists(f"{d}/never.txt"),
      f"a long prefix file, no output left ({p.stderr.strip()[-200:]})")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--prefix", f"{d}/prefix.txt", "-o",
         f"{d}/prefix.txt", "--overwrite"], expect=7)
check(open(f"{d}/prefix.txt").read().startswith("el_cityo el_kingo\n"), f"-o may not be the prefix file ({p.stderr.strip()[-160:]})")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--prefix", f"{d}/missing.txt"], expect=4)
check("missing.txt: cannot open --prefix (No such file or directory)" in p.stderr,
      f"a missing prefix file ({p.stderr.strip()[-160:]})")
# --score-target FILE (forced decoding, as fairseq --score-reference): each line's log-probability of the given
# translation equals evaluate --text --source --sentence-scores' (log10) times ln 10; with --alignment and --word-scores
# their sections follow, the word scores summing to it; an ensemble scores too; refusals.
write(f"{d}/given.txt", ["el_cityo el_kingo .", "el_o", "el_lighto ."])
check_forced_scores(ckpt, f"{d}/in.txt", f"{d}/given.txt", 3)
forced = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--score-target", f"{d}/given.txt"]).stdout
nats = [float(x) for x in forced.splitlines()]
full = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--score-target", f"{d}/given.txt", "--alignment",
            "--word-scores", "--beam", "5"]).stdout.splitlines()
ok = len(full) == 3
for line, total, given in zip(full, nats, ["el_cityo el_kingo .", "el_o", "el_lighto ."]):
    score, links, words = line.split(" ||| ")
    ok = ok and float(score) == total and len(words.split()) == len(given.split()) + 1
    ok = ok and abs(sum(map(float, words.split())) - total) < 1e-3 * len(words.split())
    ok = ok and all(int(pair.split("-")[1]) < len(given.split()) for pair in links.split())
check(ok, f"--score-target with --alignment and --word-scores (--beam does not apply) ({full})")
pair = run(["translate", "--checkpoint", ckpt, ckpt, "-i", f"{d}/in.txt", "--score-target", f"{d}/given.txt"]).stdout
check([round(float(x), 4) for x in pair.splitlines()] == [round(x, 4) for x in nats],
      "an ensemble of the model twice scores as the model")
for extra, needle in ((["--nbest", "2"], "--score-target scores one given translation a line: --nbest 2 does not apply"),
                      (["--sampling", "--beam", "1"], "--sampling does not apply"),
                      (["--prefix", f"{d}/prefix.txt"], "not both")):
    p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--score-target", f"{d}/given.txt"] + extra,
            expect=2)
    check(needle in p.stderr, f"--score-target with {extra[0]} refused ({p.stderr.strip()[-160:]})")
write(f"{d}/blank.txt", ["the king said unto him .", "", "light"])
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/blank.txt", "--score-target", f"{d}/given.txt"], expect=4)
check(f"{d}/blank.txt:2: the source line is blank" in p.stderr, f"a blank source refused ({p.stderr.strip()[-160:]})")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--score-target", f"{d}/prefix2.txt"], expect=4)
check("--score-target must hold one line, a target translation, for each input line" in p.stderr,
      f"a short translation file ({p.stderr.strip()[-160:]})")
one = run(["translate", "--checkpoint", ckpt, "--word-scores", "-i", f"{d}/in.txt"]).stdout.splitlines()
check(all(l.split(" ||| ")[0] == t for l, t in zip(one, piped.splitlines())), "the same translations with --word-scores")

# Ensembles: A A decodes as A; A B decodes (and differs from A on some line); mixed vocabularies are refused.
run(["train", cfg, "--no-progress", "--set", "train.max_steps=20", "--set", f"train.run_dir={d}/run2",
     "--set", "train.seed=9"])
b = f"{d}/run2/ckpt_step00000020.tern"
aa = run(["translate", "--checkpoint", ckpt, ckpt, "-i", f"{d}/in.txt"]).stdout
check(aa == piped, "an ensemble of a model with itself equals the model")
ab = run(["translate", "--checkpoint", ckpt, b, "-i", f"{d}/in.txt"]).stdout
check(len(ab.splitlines()) == 3, f"an ensemble of two checkpoints translates ({ab.strip()!r})")
# --weights (Marian's): A B with weights 3 1 is the mean of A A A B; 1 1 is the plain mean; bad weights exit 2.
nb = ["--beam", "3", "--nbest", "2", "-i", f"{d}/in.txt"]
w31 = run(["translate", "--checkpoint", ckpt, b, "--weights", "3", "1", *nb]).stdout.splitlines()
aaab = run(["translate", "--checkpoint", ckpt, ckpt, ckpt, b, *nb]).stdout.splitlines()
same = len(w31) == len(aaab) == 3
for x, y in zip(w31, aaab):
    fx, fy = x.split("\t"), y.split("\t")
    same = same and fx[::2] == fy[::2] and all(abs(float(p) - float(q)) < 1e-4 for p, q in zip(fx[1::2], fy[1::2]))
check(same, "--weights 3 1 decodes as the ensemble A A A B" + ("" if same else f" ({w31} vs {aaab})"))
w11 = run(["translate", "--checkpoint", ckpt, b, "--weights", "1", "1", "-i", f"{d}/in.txt"]).stdout
check(w11 == ab, "--weights 1 1 is the plain mean")
huge = run(["translate", "--checkpoint", ckpt, b, "--weights", "1e308", "1e308", "-i", f"{d}/in.txt"]).stdout
check(huge == ab, "--weights 1e308 1e308 is the plain mean too (their sum would overflow)")
for bad, rule in [(["1"], "--weights has 1 value(s) for 2 checkpoint(s)"), (["0", "1"], "--weights must be finite"),
                  (["-1", "1"], "--weights must be finite"), (["nan", "1"], "--weights"), (["x", "1"], "--weights")]:
    p = run(["translate", "--checkpoint", ckpt, b, "--weights", *bad, "-i", f"{d}/in.txt"], expect=2)
    check(rule in p.stderr, f"--weights {' '.join(bad)}: exit 2 ({p.stderr.strip()[-120:]})")
os.makedirs(f"{d}/v2")
corpus2 = make_corpus(f"{d}/v2", n=300, vocab=50)
run(["train", tiny_config(d, corpus2, f"{d}/other", name="o.yaml"), "--no-progress", "--set", "train.max_steps=10"])
p = run(["translate", "--checkpoint", ckpt, f"{d}/other/ckpt_step00000010.tern", "-i", f"{d}/in.txt"], expect=5)
check("its vocabularies differ" in p.stderr, f"mixed vocabularies refused ({p.stderr.strip()[-160:]})")
# tern bench translate: a row per (beam, batch); a 4-thread run decodes in 4 workers with the same BLEU as 1.
bench = run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, "--beams", "1", "3", "--batches", "8",
             "--json", f"{d}/bench.json"])
rows = json.load(open(f"{d}/bench.json"))
check([(r["beam"], r["batch"]) for r in rows] == [(1, 8), (3, 8)] and all(r["sentences_per_s"] > 0 for r in rows)
      and "sentences/s" in bench.stdout, "bench translate: one row per beam and batch size, printed and in JSON")
four = run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, "--beams", "3", "--batches", "8",
            "--json", f"{d}/bench4.json"], env={"OMP_NUM_THREADS": "4"})
check(json.load(open(f"{d}/bench4.json"))[0]["bleu"] == rows[1]["bleu"], "4 decoding workers translate as 1 does")
for args, msg in ((["--beams", "0"], "--beams: each must be in [1, 1024] (got 0)"),
                  (["--batches", "0"], "--batches: each must be in [1, 100000] (got 0)"),
                  (["--limit", "-1"], "--limit must be >= 0")):
    p = run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, *args], expect=2)
    check(msg in p.stderr, f"bench translate {' '.join(args)} refused ({p.stderr.strip()[-100:]})")
# --int8: translates every line, bench records it, and it is refused with another precision.
q = run(["translate", "--checkpoint", ckpt, "--int8", "-i", f"{d}/in.txt"]).stdout
check(len(q.splitlines()) == 3, f"--int8 translates ({q.strip()!r})")
run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, "--beams", "3", "--batches", "8", "--int8",
     "--json", f"{d}/bench8.json"])
r8 = json.load(open(f"{d}/bench8.json"))[0]
check(r8["int8"] and not rows[1]["int8"] and r8["sentences"] == rows[1]["sentences"], "bench translate --int8 row")
p = run(["translate", "--checkpoint", ckpt, "--int8", "--precision", "bf16", "-i", f"{d}/in.txt"], expect=2)
check("--precision" in p.stderr, f"--int8 with --precision bf16 refused ({p.stderr.strip()[-140:]})")
# --cpu-gemm: either library translates the same lines (a tiny model: rounding changes no choice), the rows record the
# library (auto resolved), and an unknown name is refused.
check(rows[0]["cpu_gemm"] in ("blas", "onednn"), f"bench translate records the resolved library ({rows[0]['cpu_gemm']})")
outs = {}
for lib in ("blas", "onednn"):
    outs[lib] = run(["translate", "--checkpoint", ckpt, "--cpu-gemm", lib, "-i", f"{d}/in.txt"]).stdout
    run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, "--beams", "3", "--batches", "8",
         "--cpu-gemm", lib, "--json", f"{d}/bench_{lib}.json"])
    r = json.load(open(f"{d}/bench_{lib}.json"))[0]
    check(r["cpu_gemm"] == lib and r["bleu"] == rows[1]["bleu"], f"bench translate --cpu-gemm {lib}: recorded, same BLEU")
check(outs["blas"] == outs["onednn"] and len(outs["blas"].splitlines()) == 3, "--cpu-gemm blas and onednn agree")
p = run(["translate", "--checkpoint", ckpt, "--cpu-gemm", "mkl", "-i", f"{d}/in.txt"], expect=2)
check("--cpu-gemm: must be auto, blas or onednn (got mkl)" in p.stderr, f"--cpu-gemm mkl refused ({p.stderr.strip()[-100:]})")
p = run(["translate", "--checkpoint", ckpt, "--cpu-gemm", "onednn", "--precision", "bf16", "-i", f"{d}/in.txt"], expect=2)
check("chooses the library of the fp32 CPU search: at precision bf16" in p.stderr or "bf16 is not available" in p.stderr,
      f"--cpu-gemm with --precision bf16 refused ({p.stderr.strip()[-140:]})")
p = run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus2], expect=4)
check("its vocabularies differ" in p.stderr, "bench translate on another corpus's vocabularies refused")
finish()
