"""tern shortlist and --shortlist (Marian's lexical shortlist): a shortlist decodes in translate (with every other
search option and --prefix), evaluate and bench translate and is recorded in their JSON; the same options give the same file; an
ensemble of one model twice equals that model; bad files, foreign vocabularies, language models, evaluate --text and
bad options are refused with their exit codes, and no output is replaced."""
import json

from common import *  # noqa: F403

d = tempdir()
corpus, ckpt, src = tiny_translation(d)

p = run(["shortlist", "--data", corpus, "--out", f"{d}/all.bin", "--first", "100000", "--best", "100000"])
check("shortlist:" in p.stderr and "frequent target tokens" in p.stderr, f"it says what it built ({p.stderr[-200:]})")
# Every target token seen in training: tokens never seen are left out of the softmax, so the scores (and, for this
# barely trained model, some translations) move; test_shortlist checks that a shortlist of the whole vocabulary gives
# exactly the search without one.
covered = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/all.bin"]).stdout
check(len(covered.splitlines()) == len(src), "a shortlist of every seen token decodes")

run(["shortlist", "--data", corpus, "--out", f"{d}/lex.bin", "--first", "5", "--best", "3", "--iters", "3"])
# Its EM iterations in threads give the same file as one thread (each count summed in the same order).
for threads in ("1", "3"):
    run(["shortlist", "--data", corpus, "--out", f"{d}/lex{threads}.bin", "--first", "5", "--best", "3", "--iters", "3",
         "--threads", threads])
check(open(f"{d}/lex1.bin", "rb").read() == open(f"{d}/lex3.bin", "rb").read() == open(f"{d}/lex.bin", "rb").read(),
      "shortlist --threads 1 and 3 (and every core) write the same file")
p = run(["shortlist", "--data", corpus, "--out", f"{d}/lexbad.bin", "--threads", "-1"], expect=2)
check("--threads must be in [0, 4096] (got -1" in p.stderr, f"--threads -1 refused ({p.stderr.strip()[-100:]})")
small = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/lex.bin"]).stdout
check(len(small.splitlines()) == len(src), f"a small shortlist decodes every line ({small!r})")
twice = run(["translate", "--checkpoint", ckpt, ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/lex.bin"]).stdout
check(twice == small, "an ensemble of the model twice with the shortlist equals the model with it")
for extra in (["--int8"], ["--early-stop", "--no-repeat-ngram-size", "2"], ["--sampling", "--seed", "4"],
              ["--alignment", "--no-unk", "--min-len", "2"]):
    if extra == ["--int8"]:
        probe = run(["translate", "--checkpoint", ckpt, "--int8", "-i", f"{d}/in.txt"], expect=None)
        if probe.returncode != 0:
            continue  # this CPU has no int8 kernels (cli_bad_inputs checks the message)
    out = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/lex.bin", *extra]).stdout
    check(len(out.splitlines()) == len(src), f"--shortlist with {' '.join(extra)} decodes")
# A prefix's tokens join the candidates: with the smallest shortlist (no frequent tokens, one translation a source
# token) every translation still starts with its prefix.
run(["shortlist", "--data", corpus, "--out", f"{d}/tiny.bin", "--first", "0", "--best", "1", "--iters", "1"])
write(f"{d}/prefix.txt", ["el_watero el_cityo"] * len(src))
out = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/tiny.bin", "--prefix",
           f"{d}/prefix.txt", "--beam", "3"]).stdout.splitlines()
check(len(out) == len(src) and all(line.startswith("el_watero el_cityo") for line in out),
      f"--prefix with a shortlist that lacks its tokens ({out})")
ev = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--split", "test", "--shortlist",
                     f"{d}/lex.bin"]).stdout)
check(ev["translation"]["shortlist"] == f"{d}/lex.bin" and ev["bleu"]["score"] >= 0, "evaluate records the shortlist")
run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, "--beams", "2", "--batches", "8", "--limit", "16",
     "--shortlist", f"{d}/lex.bin", "--json", f"{d}/bench.json"])
rows = json.load(open(f"{d}/bench.json"))
check(rows[0]["shortlist"] == f"{d}/lex.bin", "bench translate records the shortlist")

# Bad files: a flipped byte, a truncated file, a text file, a missing file, a directory: data errors naming the file.
good = open(f"{d}/lex.bin", "rb").read()
flip = bytearray(good)
flip[len(good) // 2] ^= 0x10
for name, data, needle in (("flip.bin", bytes(flip), "checksum mismatch"), ("cut.bin", good[:-9], "cut.bin"),
                           ("text.bin", b"the king\n", "not a tern shortlist")):
    with open(f"{d}/{name}", "wb") as f:
        f.write(data)
    p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/{name}"], expect=4)
    check(needle in p.stderr and "data error" in p.stderr, f"{name} refused ({p.stderr.strip()[-160:]})")
for path in (f"{d}/missing.bin", d):
    p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", path], expect=4)
    check(path in p.stderr, f"--shortlist {path} refused ({p.stderr.strip()[-160:]})")
# Another corpus's vocabularies.
other = tempdir()
make_corpus(other, n=300, vocab=50)
run(["shortlist", "--data", f"{other}/c.h5", "--out", f"{other}/lex.bin"])
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{other}/lex.bin"], expect=4)
check("it was built for the vocabularies" in p.stderr and ckpt in p.stderr, f"foreign vocabularies ({p.stderr[-200:]})")
p = run(["evaluate", "--checkpoint", ckpt, "--text", f"{d}/in.txt", "--source", f"{d}/in.txt", "--shortlist",
         f"{d}/lex.bin"], expect=2)
check("--shortlist narrows the search of --data" in p.stderr, f"evaluate --text refuses it ({p.stderr[-160:]})")
# A language model refuses it.
write(f"{d}/mono.txt", src * 30)
run(["prepare", "--train-text", f"{d}/mono.txt", "--valid-fraction", "0.1", "--vocab-size", "40", "--out", f"{d}/lm.h5"])
p = run(["shortlist", "--data", f"{d}/lm.h5", "--out", f"{d}/lm.bin"], expect=4)
check("needs a parallel corpus" in p.stderr, f"a monolingual corpus refused ({p.stderr[-160:]})")
lm_cfg = tiny_config(d, f"{d}/lm.h5", f"{d}/lm_run", name="lm.yaml")
run(["train", lm_cfg, "--set", "model.type=lm", "--set", "train.max_steps=2", "--no-progress"])
p = run(["evaluate", "--checkpoint", f"{d}/lm_run/ckpt_step00000002.tern", "--data", f"{d}/lm.h5", "--shortlist",
         f"{d}/lex.bin"], expect=2)
check("--shortlist applies to the search of seq2seq models" in p.stderr, f"a language model ({p.stderr[-160:]})")

# Options and outputs.
for args, needle in ((["--best", "0"], "--best must be in"), (["--first", "-1"], "--first must be in"),
                     (["--iters", "0"], "--iters must be in"), (["--max-sentences", "0"], "--max-sentences must be"),
                     (["--best", "x"], "--best"), (["--iters", "1e9"], "--iters")):
    p = run(["shortlist", "--data", corpus, "--out", f"{d}/new.bin", *args], expect=2)
    check(needle in p.stderr and not os.path.exists(f"{d}/new.bin"), f"{' '.join(args)} refused ({p.stderr[-120:]})")
for args in (["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", ""],
             ["shortlist", "--data", corpus, "--out", ""], ["shortlist", "--data", "", "--out", f"{d}/new.bin"]):
    p = run(args, expect=2)
    check("must name a file (got '')" in p.stderr, f"an empty file name refused ({p.stderr[-120:]})")
p = run(["shortlist", "--data", corpus, "--out", f"{d}/new.bin", "--split", "nope"], expect=4)
check("nope" in p.stderr, f"a missing split refused ({p.stderr[-120:]})")
p = run(["shortlist", "--data", corpus, "--out", f"{d}/lex.bin"], expect=7)
check("pass --overwrite" in p.stderr and open(f"{d}/lex.bin", "rb").read() == good, "an existing --out is kept")
p = run(["shortlist", "--data", corpus, "--out", corpus, "--overwrite"], expect=7)
check(os.path.getsize(corpus) > 0 and "--data" in p.stderr, f"--out the corpus refused ({p.stderr[-160:]})")
p = run(["shortlist", "--data", corpus, "--out", f"{d}/nodir/x.bin"], expect=7)
check(not os.path.exists(f"{d}/nodir"), "--out in a missing directory refused")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "--shortlist", f"{d}/lex.bin", "-o", f"{d}/lex.bin",
         "--overwrite"], expect=7)
check(open(f"{d}/lex.bin", "rb").read() == good, "translate -o the shortlist refused, the file kept")
run(["shortlist", "--data", corpus, "--out", f"{d}/lex.bin", "--overwrite", "--first", "5", "--best", "3", "--iters",
     "3"])
check(open(f"{d}/lex.bin", "rb").read() == good, "the same options give the same bytes (--overwrite replaces it)")
finish()
