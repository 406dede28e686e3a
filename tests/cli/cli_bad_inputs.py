"""Every bad input a user can give: a clear message naming the file/key/value, a non-zero exit, nothing written."""
import gzip
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=300)


def bad_config(text, code, needle, name):
    run_dir = f"{d}/never_{name}"
    cfg = tiny_config(d, corpus, run_dir, text=text, name=name + ".yaml")
    p = run(["train", cfg], expect=code)
    check(needle in p.stderr, f"{name}: message contains {needle!r} (got {p.stderr.strip()[-200:]!r})")
    check(not os.path.exists(run_dir), f"{name}: nothing written")


bad_config(TINY_CONFIG.replace("layers: 1", "layrs: 1"), 2, "unknown key 'model.layrs' (did you mean 'model.layers'?)", "unknown_key")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: one"), 2, "model.layers must be an integer (got 'one')", "wrong_type")
bad_config(TINY_CONFIG.replace("dropout: 0.0", "dropout: 1.5"), 2, "model.dropout must be in [0, 1) (got 1.5)", "out_of_range")
bad_config(TINY_CONFIG.replace("dropout: 0.0", "dropout: 0.0, dropout_src: -0.1"), 2,
           "model.dropout_src must be in [0, 1) (got -0.1)", "word_dropout_range")
bad_config(TINY_CONFIG.replace("dropout: 0.0", "dropout: 0.0, residual: true"), 2,
           "model.residual adds each layer's input to its output from the second layer on: it needs model.layers >= 2",
           "residual_one_layer")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: 1, embedding_init: xavier"), 2,
           "model.embedding_init must be normal or glorot (got xavier)", "embedding_init_name")
for std, rule in [("0", "must be in (0, 10] (got 0)"), ("-0.5", "must be in (0, 10] (got -0.5)"),
                  ("11", "must be in (0, 10] (got 11)"), (".nan", "must be a finite number (got '.nan')")]:
    bad_config(TINY_CONFIG.replace("layers: 1", f"layers: 1, embedding_std: {std}"), 2, f"model.embedding_std {rule}",
               f"embedding_std_{std}")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: 1, embedding_init: glorot, embedding_std: 0.5"), 2,
           "model.embedding_std is the standard deviation of model.embedding_init normal: glorot sets its own bound",
           "embedding_std_glorot")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: 1, layer_norm: maybe"), 2,
           "model.layer_norm must be true or false (got 'maybe')", "layer_norm_type")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: 1, enc_layers: 17"), 2,
           "model.enc_layers must be 0 (model.layers) or in [1, 16] (got 17)", "enc_layers_range")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: 1, dec_layers: two"), 2,
           "model.dec_layers must be an integer (got 'two')", "dec_layers_type")
bad_config(TINY_CONFIG.replace("layers: 1", "layers: 3, enc_layers: 1, dec_layers: 1, residual: true"), 2,
           "it needs a stack of >= 2 layers (the encoder has 1, the decoder 1)", "residual_sides_one_layer")
bad_config(TINY_CONFIG + "\n  bad: [\n", 2, "YAML does not parse", "yaml_syntax")
bad_config(TINY_CONFIG.replace("CORPUS", f"{d}/missing.h5"), 4, "missing.h5: corpus file does not exist", "missing_corpus")

# A thread count from the environment is checked like a config value.
cfg = tiny_config(d, corpus, f"{d}/never_omp", name="omp.yaml")
for omp in ("four", "0", "100000"):  # 100000 threads: translate hung starting a decoding worker for each
    for args in (["train", cfg], ["translate", "--checkpoint", "none.tern"]):
        p = run(args, expect=2, env={"OMP_NUM_THREADS": omp}, timeout=60)
        check(f"OMP_NUM_THREADS: must be an integer in [1, 4096] (as train.threads), got '{omp}'" in p.stderr and
              not os.path.exists(f"{d}/never_omp"), f"tern {args[0]}: bad OMP_NUM_THREADS={omp} is named "
              f"({p.stderr.strip()[-160:]!r})")

# A flag takes no value: --no-progress=3 is refused (CLI11 would read it as "true"), nothing written.
p = run(["train", cfg, "--no-progress=3"], expect=2)
check("no-progress" in p.stderr and not os.path.exists(f"{d}/never_omp"), f"a value for a flag refused ({p.stderr.strip()[-160:]!r})")

# Scoring an empty hypothesis file is refused, as sacreBLEU refuses it (a BLEU of 0 would hide a failed translation).
open(f"{d}/empty.txt", "w").close()
p = run(["score", f"{d}/empty.txt", "-i", f"{d}/empty.txt"], expect=4)
check("empty.txt: no hypotheses (the input is empty)" in p.stderr, f"empty hypotheses refused ({p.stderr.strip()[-160:]!r})")

# Empty inputs and missing splits.
write(f"{d}/empty.en", [])
write(f"{d}/empty.es", [])
p = run(["prepare", "--train-src", f"{d}/empty.en", "--train-tgt", f"{d}/empty.es", "--out", f"{d}/e.h5"], expect=4)
check("empty.en: input file is empty" in p.stderr and not os.path.exists(f"{d}/e.h5"), "empty corpus is refused")
write(f"{d}/long.en", [" ".join(["word"] * 40)] * 30)
p = run(["prepare", "--train-src", f"{d}/long.en", "--train-tgt", f"{d}/long.en", "--out", f"{d}/e.h5", "--vocab-size",
         "16", "--max-tokens", "8"], expect=4)
check("30 longer than --max-tokens 8 subword tokens); HINT: raise --max-tokens" in p.stderr and
      not os.path.exists(f"{d}/e.h5"), f"a split emptied by --max-tokens says why ({p.stderr.strip()[-200:]!r})")
write(f"{d}/short.es", ["word"] * 30)
p = run(["prepare", "--train-src", f"{d}/long.en", "--train-tgt", f"{d}/short.es", "--out", f"{d}/e.h5", "--vocab-size",
         "16", "--max-ratio", "3"], expect=4)
check("30 with lengths apart by more than --max-ratio); HINT: raise --max-tokens or --max-ratio," in p.stderr and
      not os.path.exists(f"{d}/e.h5"), f"a split emptied by --max-ratio says why ({p.stderr.strip()[-200:]!r})")
src, tgt = synthetic_parallel(200)
write(f"{d}/s.en", src)
write(f"{d}/s.es", tgt)
run(["prepare", "--train-src", f"{d}/s.en", "--train-tgt", f"{d}/s.es", "--vocab-size", "50", "--out", f"{d}/novalid.h5"])
# gzip-compressed inputs read as their text; a truncated one is refused, naming it, with nothing written.
for side, lines in (("en", src), ("es", tgt)):
    with gzip.open(f"{d}/s.{side}.gz", "wt", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in lines))
run(["prepare", "--train-src", f"{d}/s.en.gz", "--train-tgt", f"{d}/s.es.gz", "--vocab-size", "50", "--out", f"{d}/gz.h5"])


def bigram_perplexity(train):  # the figures only: the first line also says how long the build took and its memory
    out = run(["ngram", "--order", "2", "--smoothing", "laplace", "--train", train, "--test", f"{d}/s.en"]).stdout
    return [line for line in out.splitlines() if "built in" not in line]


check(os.path.exists(f"{d}/gz.h5") and bigram_perplexity(f"{d}/s.en.gz") == bigram_perplexity(f"{d}/s.en"),
      "gzip inputs: prepare reads them, an n-gram model trained on one equals the plain file's")
# An output named .gz is written gzip-compressed (as Marian writes them): the ARPA model decompresses to the plain one.
for arpa in ("lm.arpa", "lm.arpa.gz"):
    run(["ngram", "--order", "2", "--smoothing", "interpolated", "--train", f"{d}/s.en.gz", "--test", f"{d}/s.en",
         "--arpa", f"{d}/{arpa}"])
check(gzip.open(f"{d}/lm.arpa.gz", "rt", encoding="utf-8").read() == open(f"{d}/lm.arpa", encoding="utf-8").read(),
      "ngram --arpa lm.arpa.gz: gzip-compressed, the same model")
data = open(f"{d}/s.en.gz", "rb").read()
open(f"{d}/cut.en.gz", "wb").write(data[:len(data) // 2])
p = run(["prepare", "--train-src", f"{d}/cut.en.gz", "--train-tgt", f"{d}/s.es.gz", "--vocab-size", "50", "--out",
         f"{d}/cut.h5"], expect=4)
check("cut.en.gz: the gzip data is truncated" in p.stderr and not os.path.exists(f"{d}/cut.h5"),
      f"a truncated gzip input is refused, nothing written ({p.stderr.strip()[-160:]!r})")
cfg = tiny_config(d, f"{d}/novalid.h5", f"{d}/run_novalid", name="novalid.yaml")
p = run(["train", cfg], expect=4)
check("split 'valid' is missing" in p.stderr, f"missing split is named ({p.stderr.strip()[-120:]!r})")

# Truncated corpus.
shutil.copy(corpus, f"{d}/trunc.h5")
os.truncate(f"{d}/trunc.h5", os.path.getsize(corpus) // 3)
cfg = tiny_config(d, f"{d}/trunc.h5", f"{d}/run_trunc", name="trunc.yaml")
p = run(["train", cfg], expect=4)
check("trunc.h5" in p.stderr and "data error" in p.stderr, f"truncated corpus named ({p.stderr.strip()[-160:]!r})")

# A good run, then checkpoint problems.
good = tiny_config(d, corpus, f"{d}/run", name="good.yaml")
run(["train", good, "--set", "train.max_steps=10", "--no-progress"])
p = run(["train", good, "--set", "train.max_steps=10"], expect=None)
check(p.returncode != 0 and "--resume auto" in p.stderr, "a second run into the same run_dir must say --resume")
ckpt = f"{d}/run/ckpt_step00000010.tern"
shutil.copy(ckpt, f"{d}/bad.tern")
with open(f"{d}/bad.tern", "r+b") as f:
    f.seek(os.path.getsize(ckpt) // 2)
    f.write(b"\x00garbage\x00")
p = run(["evaluate", "--checkpoint", f"{d}/bad.tern", "--data", corpus], expect=5)
check("checksum mismatch" in p.stderr and "bad.tern" in p.stderr, "corrupted checkpoint: checksum error names the file")
shutil.copy(ckpt, f"{d}/short.tern")
os.truncate(f"{d}/short.tern", 1000)
p = run(["evaluate", "--checkpoint", f"{d}/short.tern", "--data", corpus], expect=5)
check("truncated" in p.stderr, "truncated checkpoint is named as such")
p = run(["train", good, "--resume", f"{d}/bad.tern"], expect=5)
check("checksum mismatch" in p.stderr, "resume from a corrupted checkpoint refuses")

# Checkpoint from another model configuration / vocabulary.
p = run(["train", good, "--set", "model.hidden=48", "--set", f"train.run_dir={d}/run_other",
         "--resume", ckpt], expect=5)
check("different model configuration" in p.stderr, "resume with another model config refuses")
run(["prepare", "--train-src", f"{d}/train.es", "--train-tgt", f"{d}/train.en", "--valid-fraction", "0.1",
     "--vocab-size", "60", "--out", f"{d}/swapped.h5"])
other_corpus = f"{d}/swapped.h5"
p = run(["evaluate", "--checkpoint", ckpt, "--data", other_corpus], expect=4)
check("vocabulary differs" in p.stderr, "evaluate on a corpus with another vocabulary refuses")
p = run(["train", good, "--set", f"data.corpus={other_corpus}", "--set", "train.max_steps=12", "--resume", ckpt], expect=5)
check("was trained with a different src vocabulary than" in p.stderr and other_corpus in p.stderr,
      f"resume on a corpus with another vocabulary refuses ({p.stderr.strip()[-160:]!r})")

# What a kill in the middle of a save leaves behind: a partial temporary file (killed while writing), or a complete
# newer checkpoint that `latest` does not name yet (killed between the rename and the pointer update). Either way
# --resume auto takes the checkpoint `latest` names, which is intact.
shutil.copytree(f"{d}/run", f"{d}/killed")
with open(f"{d}/killed/ckpt_step00000010.tern", "rb") as f:
    partial = f.read()[:5000]
open(f"{d}/killed/ckpt_step00000011.tern.tmp-4242", "wb").write(partial)
p = run(["train", good, "--set", f"train.run_dir={d}/killed", "--set", "train.max_steps=12", "--resume", "--no-progress"])
check(f"resumed from {d}/killed/ckpt_step00000010.tern at step 10" in p.stderr
      and not os.path.exists(f"{d}/killed/ckpt_step00000011.tern.tmp-4242"), "a partial save left by a kill is ignored and removed")
open(f"{d}/killed/latest", "w").write("ckpt_step00000010.tern\n")  # the pointer update of step 12 never happened
p = run(["train", good, "--set", f"train.run_dir={d}/killed", "--set", "train.max_steps=12", "--resume", "--no-progress"])
check(f"resumed from {d}/killed/ckpt_step00000010.tern at step 10" in p.stderr,
      "a complete checkpoint newer than `latest` is not taken: latest is written last")

# A non-finite loss stops training with the step and the last good checkpoint (after skipping max_bad_steps).
blow_up = ["--set", "optim.optimizer=sgd", "--set", "optim.lr=3e38", "--set", "optim.clip_norm=0",
           "--set", "train.save_every=1", "--set", "train.max_steps=20", "--no-progress"]
p = run(["train", good, "--set", f"train.run_dir={d}/nan", *blow_up], expect=6)
check(("loss became nan at step 2" in p.stderr or "loss became inf at step 2" in p.stderr) and "last good checkpoint: " + f"{d}/nan/ckpt_step00000001.tern" in p.stderr,
      f"NaN loss names step and checkpoint ({p.stderr.strip()[-220:]!r})")
p = run(["train", good, "--set", f"train.run_dir={d}/nan2", "--set", "train.max_bad_steps=2", *blow_up], expect=6)
check(p.stderr.count("step skipped") == 2 and "3 bad step(s)" in p.stderr, "max_bad_steps skips then stops")

# Unwritable output directory (a path under a regular file).
p = run(["train", good, "--set", f"train.run_dir={d}/good.yaml/sub"], expect=None)
check(p.returncode != 0 and "run directory" in p.stderr, "unwritable run_dir is an error")
shutil.rmtree(d)
finish()
