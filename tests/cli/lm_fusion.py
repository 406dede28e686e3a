"""translate/evaluate/bench translate --lm (shallow fusion with a target-language model, as fairseq --lm-path and
--lm-weight): a language model prepared from the translation corpus's target vocabulary (prepare --vocab-from a
parallel corpus) fuses into the search; weight 0 translates exactly as without it, a heavy weight changes the
translations; it combines with ensembles, shortlists, --int8, sampling, alignment and n-best; evaluate and bench
translate record it; wrong checkpoints, foreign vocabularies, bad weights and options without a search are refused
with their exit codes, and no output is replaced."""
import json
import os

from common import *  # noqa: F403

d = tempdir()
corpus, ckpt, src = tiny_translation(d)

# The language model: the corpus's target side with its target vocabulary (the default --vocab-side tgt).
with open(f"{d}/train.es") as f:
    write(f"{d}/mono.es", f.read().splitlines())
p = run(["prepare", "--train-text", f"{d}/mono.es", "--vocab-from", corpus, "--valid-fraction", "0.1", "--out",
         f"{d}/lm.h5"])
check("reusing the tgt SentencePiece model" in p.stderr, f"prepare says which side it took ({p.stderr[-300:]})")
lm_cfg = tiny_config(d, f"{d}/lm.h5", f"{d}/lm_run", name="lm.yaml")
run(["train", lm_cfg, "--set", "model.type=lm", "--set", "train.max_steps=20", "--set", "train.valid_every=0",
     "--no-progress"])
lm = f"{d}/lm_run/ckpt_step00000020.tern"


def translate(*extra, expect=0):
    return run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", *extra], expect=expect)


plain = translate("--nbest", "2", "--beam", "3").stdout
check(translate("--nbest", "2", "--beam", "3", "--lm", lm, "--lm-weight", "0").stdout == plain,
      "--lm-weight 0 translates exactly as without --lm (scores included)")
heavy = translate("--nbest", "2", "--beam", "3", "--lm", lm, "--lm-weight", "5").stdout
check(heavy != plain and len(heavy.splitlines()) == len(src), f"a heavy weight changes the translations ({heavy!r})")
default = translate("--lm", lm, "--lm-weight", "0.2").stdout
check(len(default.splitlines()) == len(src), "a usual weight decodes every line")

# With the other search options, an ensemble and a shortlist.
run(["shortlist", "--data", corpus, "--out", f"{d}/lex.bin", "--first", "5", "--best", "3"])
for extra in (["--shortlist", f"{d}/lex.bin"], ["--int8"], ["--sampling", "--beam", "1", "--seed", "3"],
              ["--alignment"], ["--early-stop", "--no-repeat-ngram-size", "2", "--min-len", "2", "--no-unk"],
              ["--checkpoint", ckpt, "--shortlist", f"{d}/lex.bin"]):
    out = translate("--lm", lm, "--lm-weight", "0.2", *extra).stdout
    check(len(out.splitlines()) == len(src), f"--lm with {' '.join(extra)} decodes every line")
twice = run(["translate", "--checkpoint", ckpt, ckpt, "-i", f"{d}/in.txt", "--lm", lm, "--lm-weight", "0.2"]).stdout
check(twice == default, "an ensemble of the model twice with --lm equals the model with it")

# evaluate and bench translate record it.
ev = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--split", "test", "--lm", lm,
                     "--lm-weight", "0.5", "--attention-samples", "0"]).stdout)
check(ev["translation"]["lm"] == lm and ev["translation"]["lm_weight"] == 0.5 and ev["bleu"]["score"] >= 0,
      "evaluate records the language model and its weight")
ev0 = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--split", "test"]).stdout)
check(ev0["translation"]["lm"] == "" and ev0["translation"]["lm_weight"] is None, "and records none without it")
p = run(["bench", "translate", "--checkpoint", ckpt, "--data", corpus, "--split", "test", "--beams", "2", "--batches",
         "8", "--lm", lm, "--lm-weight", "0.2", "--json", f"{d}/bench.json"])
rows = json.load(open(f"{d}/bench.json"))
check(rows[0]["lm"] == lm and rows[0]["lm_weight"] == 0.2 and f"--lm {lm} --lm-weight 0.2" in p.stdout,
      "bench translate records the language model")

# Refused: a seq2seq model as --lm, a language model as the translation model, another vocabulary (the source side's,
# --vocab-side src), a missing or empty file, bad weights, a weight without --lm, and --lm where nothing is searched.
p = translate("--lm", ckpt, "--lm-weight", "0.2", expect=2)
check("is a seq2seq model: --lm takes a language model" in p.stderr, f"a seq2seq --lm ({p.stderr[-200:]})")
p = run(["evaluate", "--checkpoint", lm, "--data", f"{d}/lm.h5", "--lm", lm, "--lm-weight", "0.2"], expect=2)
check("--lm fuses a language model into the search of a seq2seq model" in p.stderr,
      f"a language model as the translation model ({p.stderr[-200:]})")
with open(f"{d}/train.en") as f:
    write(f"{d}/mono.en", f.read().splitlines())
run(["prepare", "--train-text", f"{d}/mono.en", "--vocab-from", corpus, "--vocab-side", "src", "--valid-fraction",
     "0.1", "--out", f"{d}/lm_src.h5"])
src_cfg = tiny_config(d, f"{d}/lm_src.h5", f"{d}/lm_src_run", name="lm_src.yaml")
run(["train", src_cfg, "--set", "model.type=lm", "--set", "train.max_steps=2", "--no-progress"])
p = translate("--lm", f"{d}/lm_src_run/ckpt_step00000002.tern", "--lm-weight", "0.2", expect=5)
check("is not the target vocabulary of" in p.stderr and "--vocab-from" in p.stderr,
      f"a language model of the source vocabulary ({p.stderr[-240:]})")
p = translate("--lm", f"{d}/gone.tern", "--lm-weight", "0.2", expect=5)
check("gone.tern" in p.stderr, f"a missing --lm file ({p.stderr[-160:]})")
for weight, code in (("11", 2), ("-1", 2), ("nan", 2), ("inf", 2), ("x", 2)):
    p = translate("--lm", lm, "--lm-weight", weight, expect=code)
    check("--lm-weight" in p.stderr, f"--lm-weight {weight} refused ({p.stderr.strip()[-160:]})")
p = translate("--lm-weight", "0.3", expect=2)
check("--lm-weight requires --lm" in p.stderr, f"--lm-weight without --lm ({p.stderr.strip()[-160:]})")
p = translate("--lm", lm, expect=2)
check("--lm requires --lm-weight" in p.stderr, f"--lm without --lm-weight ({p.stderr.strip()[-160:]})")
p = translate("--lm", "", "--lm-weight", "0.2", expect=2)
check("--lm" in p.stderr, f"an empty --lm ({p.stderr.strip()[-160:]})")
for args, needle in (
        (["--text", f"{d}/in.txt", "--source", f"{d}/in.txt", "--lm", lm, "--lm-weight", "0.2"],
         "--lm joins the search of --data"),
        (["--data", corpus, "--no-translate", "--lm", lm, "--lm-weight", "0.2"],
         "--lm joins the search, and --no-translate"),
        (["--data", corpus, "--no-translate", "--shortlist", f"{d}/lex.bin"], "--shortlist narrows the search, and")):
    p = run(["evaluate", "--checkpoint", ckpt, *args], expect=2)
    check(needle in p.stderr, f"evaluate {' '.join(args[-4:])} refused ({p.stderr.strip()[-200:]})")
# The language model is an input: never an output, even with --overwrite; an existing output is kept.
before = open(lm, "rb").read()
p = translate("--lm", lm, "--lm-weight", "0.2", "-o", lm, "--overwrite", expect=7)
check(open(lm, "rb").read() == before, f"-o the --lm file refused, the file kept ({p.stderr.strip()[-160:]})")
write(f"{d}/out.txt", ["keep"])
translate("--lm", lm, "--lm-weight", "0.2", "-o", f"{d}/out.txt", expect=7)
check(open(f"{d}/out.txt").read() == "keep\n", "an existing output is kept without --overwrite")
finish()
