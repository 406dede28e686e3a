#!/usr/bin/env python3
"""Pretrained embeddings through the CLI: `tern encode` writes a text in a corpus's pieces exactly as SentencePiece
encodes it (the pieces of its ids: <unk> for an unknown character); train.src_embeddings / tgt_embeddings (word2vec with its header, GloVe without, gzip) start the tables
from the file's vectors (the first step's loss differs from a random start; the vectors are in the checkpoint);
train.freeze_embeddings keeps them there through training, resumes bitwise, refuses a resume that changes it, and
under mpirun -np 2 (overlapped all-reduce) equals one rank with two shards; a language model takes tgt_embeddings;
bad files and combinations are refused with their exit codes."""
import gzip
import os
import random
import subprocess

import h5py
import sentencepiece as spm

from common import (CKPT_DIFF, TINY_CONFIG, check, check_resumes_bitwise, check_same_training, finish, make_corpus,
                    metrics, run, tempdir, tern_job, tiny_config, train_variant, write)

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("valid_every: 10", "valid_every: 0")
DIM = 32
check("embedding: 32" in text, "the tiny config's embedding size is the vectors'")

# tern encode: SentencePiece's pieces of each line, from a file or stdin, to a file (gzip by name) or stdout.
run(["encode", "--corpus", corpus, "--side", "src", "-i", f"{d}/train.en", "-o", f"{d}/src.pieces"])
run(["encode", "--corpus", corpus, "--side", "tgt", "-i", f"{d}/train.es", "-o", f"{d}/tgt.pieces.gz"])
with h5py.File(corpus, "r") as f:
    sps = {side: spm.SentencePieceProcessor(model_proto=f[f"vocab/{side}"][:].tobytes()) for side in ("src", "tgt")}


def pieces(side, line):
    return " ".join(sps[side].id_to_piece(i) for i in sps[side].encode(line))


src_lines = open(f"{d}/train.en", encoding="utf-8").read().splitlines()
got = open(f"{d}/src.pieces", encoding="utf-8").read().splitlines()
check(got == [pieces("src", l) for l in src_lines],
      f"encode writes SentencePiece's pieces of every line ({len(got)} lines)")
tgt_got = gzip.open(f"{d}/tgt.pieces.gz", "rt", encoding="utf-8").read().splitlines()
tgt_lines = open(f"{d}/train.es", encoding="utf-8").read().splitlines()
check(tgt_got == [pieces("tgt", l) for l in tgt_lines], "-o NAME.gz writes gzip")
p = run(["encode", "--corpus", corpus, "--side", "tgt", "-i", "-", "-o", "-"], stdin="el_kingo   said .\n\nx\n", cwd=d)
check(not os.path.exists(f"{d}/-"), "-o - is stdout, not a file named -")
check(p.stdout == pieces("tgt", "el_kingo said .") + "\n\n" + pieces("tgt", "x") + "\n" and "<unk>" in p.stdout,
      f"stdin to stdout, spaces squeezed, an unknown character as <unk> ({p.stdout!r})")
for args, code, needle in [
        (["--side", "text"], 2, "encode --side text: " + corpus + " has vocabularies for src, tgt only"),
        ([], 2, "has a vocabulary for each of src, tgt: say which with --side"),
        (["--side", "src", "-i", f"{d}/train.en", "-o", f"{d}/src.pieces"], 7, "src.pieces"),
        (["--side", "src", "-i", f"{d}/none.en"], 4, "none.en")]:
    p = run(["encode", "--corpus", corpus] + args, expect=code, stdin="")
    check(needle in p.stderr, f"encode {' '.join(args)}: exit {code}, says '{needle}' ({p.stderr.strip()[-200:]})")
with open(f"{d}/bad.en", "wb") as f:
    f.write(b"fine\nbad \xff byte\n")
p = run(["encode", "--corpus", corpus, "--side", "src", "-i", f"{d}/bad.en"], expect=4)
check(f"{d}/bad.en:2: invalid UTF-8 at byte 5" in p.stderr, f"invalid UTF-8: file, line, byte ({p.stderr.strip()})")

# Vectors for every piece the training text uses (and a token of no vocabulary): word2vec text for the source,
# GloVe (no header), gzip-compressed, for the target.
rng = random.Random(7)
vectors = {}
for side, lines in [("src", got), ("tgt", tgt_got)]:
    pieces = sorted({t for l in lines for t in l.split()}) + ["not_a_piece"]
    vectors[side] = {t: [round(rng.uniform(-1, 1), 5) for _ in range(DIM)] for t in pieces}
write(f"{d}/src.vec", [f"{len(vectors['src'])} {DIM}"] +
      [t + " " + " ".join(map(str, v)) + " " for t, v in vectors["src"].items()])
with gzip.open(f"{d}/tgt.txt.gz", "wt", encoding="utf-8") as f:
    f.write("".join(t + " " + " ".join(map(str, v)) + "\n" for t, v in vectors["tgt"].items()))
vec_sets = [f"train.src_embeddings={d}/src.vec", f"train.tgt_embeddings={d}/tgt.txt.gz"]


def table(ckpt, name):
    out = subprocess.run([CKPT_DIFF, "--param", ckpt, name], capture_output=True, text=True, check=True).stdout
    return [[float(x) for x in l.split()] for l in out.splitlines()[1:]]


def rows_from_file(rows, side):
    """How many of the file's vectors (of pieces of the vocabulary) are rows of the table, to float precision."""
    have = [tuple(round(x, 5) for x in r) for r in rows]
    return sum(tuple(v) in have for t, v in vectors[side].items() if t != "not_a_piece")


# Frozen: logged, resumed bitwise (10 + 10 steps equal 20), the vectors still in the tables after 20 steps.
log = check_resumes_bitwise(d, corpus, text, "frozen", vec_sets + ["train.freeze_embeddings=both"])
n_src, n_tgt = len(vectors["src"]) - 1, len(vectors["tgt"]) - 1
check(f"train.src_embeddings {d}/src.vec: vectors for {n_src} of the " in log and "frozen (train.freeze_embeddings)"
      in log, f"the log says how many pieces have vectors and that they are frozen ({log[:600]})")
check(f"train.tgt_embeddings {d}/tgt.txt.gz: vectors for {n_tgt} of the " in log, "the GloVe gzip file is read")
ckpt = f"{d}/frozen/ckpt_step00000020.tern"
check(rows_from_file(table(ckpt, "src_emb.weight"), "src") == n_src, "frozen source table: the file's vectors")
check(rows_from_file(table(ckpt, "tgt_emb.weight"), "tgt") == n_tgt, "frozen target table: the file's vectors")
check(all(x == 0 for x in table(ckpt, "src_emb.weight")[0]), "the padding row stays zeros")

# Not frozen: the same first step as frozen (the same start), the tables learn; a random start differs.
train_variant(d, corpus, text, "free", vec_sets)
train_variant(d, corpus, text, "random", [])
loss1 = {name: metrics(f"{d}/{name}")[0]["train_loss"] for name in ("frozen", "free", "random")}
check(loss1["frozen"] == loss1["free"] != loss1["random"], f"step 1 starts from the vectors ({loss1})")
free = table(f"{d}/free/ckpt_step00000010.tern", "src_emb.weight")
check(rows_from_file(free, "src") == 0, "unfrozen, the source table moves away from the vectors")
only_src = train_variant(d, corpus, text, "src_only", vec_sets[:1] + ["train.freeze_embeddings=src"])[2]
tgt10 = table(f"{d}/src_only/ckpt_step00000010.tern", "tgt_emb.weight")
check(rows_from_file(table(f"{d}/src_only/ckpt_step00000010.tern", "src_emb.weight"), "src") == n_src and
      "train.tgt_embeddings" not in only_src and rows_from_file(tgt10, "tgt") == 0,
      "freeze src with source vectors only: the source table stays, the target trains from random")

# A resume that changes what is frozen is refused (the optimizer's state holds the parameters it trains).
p = run(["train", f"{d}/frozen.yaml", "--resume", "--no-progress", "--set", "train.max_steps=30"] + vec_sets,
        expect=5)
check("train.freeze_embeddings is both there and none here" in p.stderr, f"changed freezing refused ({p.stderr[-300:]})")

# mpirun -np 2 with the overlapped all-reduce equals one rank with two shards (frozen tables are never reduced).
sets = ["--no-progress", "--set", "train.max_steps=6", "--set", "train.log_every=1", "--set", "data.shards=2",
        "--set", "train.check_sync_every=1", "--set", "distributed.overlap=true"] + \
    [x for s in vec_sets + ["train.freeze_embeddings=tgt"] for x in ("--set", s)]
run(["train", tiny_config(d, corpus, f"{d}/one", text=text, name="one.yaml")] + sets)
p = tern_job(["train", tiny_config(d, corpus, f"{d}/two", text=text, name="two.yaml")] + sets, ranks=2)
check(p.returncode == 0, f"mpirun -np 2 trains with frozen target embeddings (exit {p.returncode})")
check_same_training(f"{d}/two", f"{d}/one", 6, tol=1e-5)

# A language model: its one table is the target side's (`both` freezes it too).
run(["prepare", "--train-text", f"{d}/train.es", "--valid-fraction", "0.1", "--vocab-from", corpus, "--out",
     f"{d}/lm.h5"])
lm_text = text.replace("model: {", "model: {type: lm, ")
_, _, log = train_variant(d, f"{d}/lm.h5", lm_text, "lm", [f"train.tgt_embeddings={d}/tgt.txt.gz",
                                                          "train.freeze_embeddings=both"])
check(rows_from_file(table(f"{d}/lm/ckpt_step00000010.tern", "emb.weight"), "tgt") == n_tgt and
      f"vectors for {n_tgt} of the " in log, "a language model starts from (and keeps) the target vectors")

# Refusals: exit 2 for a combination, 4 for a file; each names the key, the file and line, the rule.
write(f"{d}/dim.vec", ["2 3", "▁the 1 2 3", "▁king 1 2 3"])
write(f"{d}/words.vec", ["WORD " + " ".join(["0.1"] * DIM)])
write(f"{d}/short.vec", [t + " " + " ".join(map(str, v)) for t, v in list(vectors["src"].items())[:3]] +
      ["▁el " + " ".join(["0.1"] * (DIM - 1))])
base = tiny_config(d, corpus, f"{d}/never", text=text, name="never.yaml")
lm_base = tiny_config(d, f"{d}/lm.h5", f"{d}/never_lm", text=lm_text, name="never_lm.yaml")
for cfg, sets, code, needle in [
        (base, [f"train.src_embeddings={d}/dim.vec"], 4,
         f"train.src_embeddings {d}/dim.vec: its header says vectors of 3 values, but model.embedding is 32"),
        (base, [f"train.src_embeddings={d}/words.vec"], 4,
         "none of its 1 tokens is a piece of the source vocabulary of " + corpus),
        (base, [f"train.src_embeddings={d}/short.vec"], 4, f"{d}/short.vec:4: token '▁el' has 31 values"),
        (base, [f"train.tgt_embeddings={d}/none.vec"], 4, f"{d}/none.vec"),
        (base, vec_sets[:1] + [f"train.init_from={ckpt}"], 2,
         "train.src_embeddings starts the embeddings from vectors and train.init_from every parameter"),
        (base, ["train.freeze_embeddings=src", "model.share_embeddings=true"], 2,
         "train.freeze_embeddings src cannot freeze one side: model.share_embeddings"),
        (base, ["train.freeze_embeddings=all"], 2, "train.freeze_embeddings"),
        (lm_base, [f"train.src_embeddings={d}/src.vec"], 2, "give the vectors as train.tgt_embeddings"),
        (lm_base, ["train.freeze_embeddings=src"], 2, "freeze it with tgt")]:
    p = run(["train", cfg, "--no-progress"] + [x for s in sets for x in ("--set", s)], expect=code)
    check(needle in p.stderr, f"{' '.join(sets)}: exit {code}, says '{needle}' ({p.stderr.strip()[-300:]})")
check(not any(n.endswith(".tern") for n in os.listdir(f"{d}/never")) if os.path.isdir(f"{d}/never") else True,
      "a refused run saves no checkpoint")
finish()
