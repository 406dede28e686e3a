"""model.layer_norm (layer-normalized LSTM/GRU cells, Marian --layer-normalization) through the CLI: a seq2seq model
trains, resumes bitwise (dropout and word dropout on), translates with beam search on the CPU's fast steps and through
the modules (--int8 changes the output layer only), evaluates, averages and ensembles with a plain model; each cell
adds exactly its gates' worth of parameters (two gains, one bias instead of two); input feeding's cells and GRUs
train; a recurrent language model trains, evaluates and generates; ffnn_lm refuses the key; a checkpoint of a plain
model does not initialize a layer-normalized one. model.embedding_init glorot trains and translates, and may differ
under init_from. (The formula, padding and gradients are checked in the gtests.)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d, corpus, text = two_layer_fixture()
drop = ["model.dropout=0.1", "model.dropout_src=0.2", "model.dropout_tgt=0.2"]  # random streams across the resume


def train(name, sets, steps=10):
    return train_variant(d, corpus, text, name, sets, steps)


norm = ["model.layer_norm=true", "model.residual=true"] + drop
log = check_resumes_bitwise(d, corpus, text, "norm", norm)
check("layer_norm: true" in open(f"{d}/norm/config.yaml").read(), "the resolved config names it")
check("layer-normalized" in log, "the training log says the cells are layer-normalized")

# Parameters: a cell of G gates has W_ih, W_hh, two gains and one bias (G each) where LibTorch's has two biases.
_, _, plain_log = train("plain", ["model.residual=true"] + drop)
count = {n: int(l.split(" parameters;")[0].split()[-1].replace(",", "")) for n, l in (("norm", log), ("plain", plain_log))}
H = 32
gates = 2 * 2 * 4 * (H // 2) + 2 * 4 * H  # encoder: 2 layers x 2 directions of H/2; decoder: 2 layers of H
check(count["norm"] - count["plain"] == gates, f"layer norm adds one vector of gates a cell ({count}, {gates})")

best = f"{d}/norm/best.tern"
outs = {}
for beam in ("1", "3"):
    p = run(["translate", "--checkpoint", best, "--beam", beam, "-i", f"{d}/in.txt", "--alignment"])
    outs[beam] = p.stdout
    check(len(p.stdout.splitlines()) == 5 and all(" ||| " in l for l in p.stdout.splitlines()),
          f"beam {beam} translates every line, with alignments ({len(p.stdout.splitlines())} lines)")
p = run(["translate", "--checkpoint", best, "--beam", "3", "-i", f"{d}/in.txt", "--int8"], expect=None)
check(p.returncode == 0 or "int8" in p.stderr, f"--int8 runs or says this CPU has no int8 kernels ({p.stderr[-200:]})")
p = run(["evaluate", "--checkpoint", best, "--data", corpus, "--split", "test", "--beam", "2",
         "--json", f"{d}/norm.json"])
r = json.load(open(f"{d}/norm.json"))
check(r["perplexity"]["ppl_per_token"] > 1 and "score" in r["bleu"], "evaluate reports perplexity and BLEU")
# Forced decoding of the beam-3 translations (the CPU's fast steps) scores each as teacher forcing does (evaluate
# --text --source --sentence-scores, log10): the two paths of the layer-normalized decoder agree.
write(f"{d}/hyp.txt", [l.split(" ||| ")[0] for l in outs["3"].splitlines()])
check_forced_scores(best, f"{d}/in.txt", f"{d}/hyp.txt", 5, "layer-normalized: ")
run(["average", "--last", "2", f"{d}/norm", "--out", f"{d}/norm_avg.tern"])
p = run(["evaluate", "--checkpoint", f"{d}/norm_avg.tern", "--data", corpus, "--split", "test", "--beam", "2"])
check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, "its checkpoints average and evaluate")
p = run(["translate", "--checkpoint", best, f"{d}/plain/best.tern", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "a layer-normalized model ensembles with a plain one")

# A plain checkpoint does not initialize a layer-normalized model: the refusal names the key.
cfg = tiny_config(d, corpus, f"{d}/init", text=text, name="init.yaml")
p = run(["train", cfg, "--no-progress", "--set", f"train.init_from={d}/plain/best.tern", "--set",
         "model.residual=true", "--set", "model.layer_norm=true"], expect=5)
check("model.layer_norm" in p.stderr, f"init_from names model.layer_norm ({p.stderr.strip()[-300:]})")

# model.embedding_init (glorot: Marian's small tied embeddings): a model trains with it and translates; a checkpoint
# initializes a run whose embedding_init differs (it only decides where training starts); a bad name is refused.
train("glorot", ["model.layer_norm=true", "model.residual=true", "model.embedding_init=glorot"])
check("embedding_init: glorot" in open(f"{d}/glorot/config.yaml").read(), "the resolved config names the init")
p = run(["translate", "--checkpoint", f"{d}/glorot/best.tern", "--beam", "3", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "a model with glorot embeddings translates")
cfg = tiny_config(d, corpus, f"{d}/from_glorot", text=text, name="from_glorot.yaml")
run(["train", cfg, "--no-progress", "--set", f"train.init_from={d}/glorot/best.tern", "--set", "model.residual=true",
     "--set", "model.layer_norm=true", "--set", "model.embedding_init=normal", "--set", "model.embedding_std=0.5",
     "--set", "train.max_steps=2"])
check(os.path.exists(f"{d}/from_glorot/best.tern"), "init_from accepts another embedding_init and embedding_std")

# Input feeding's cells, GRU.
train("gru_feed", ["model.layer_norm=true", "model.cell=gru", "model.input_feeding=true"])
p = run(["translate", "--checkpoint", f"{d}/gru_feed/best.tern", "--beam", "3", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "a layer-normalized GRU with input feeding translates")

# A recurrent language model.
src = [l.rstrip("\n") for l in open(f"{d}/train.en")]
write(f"{d}/text.txt", src)
run(["prepare", "--train-text", f"{d}/text.txt", "--valid-fraction", "0.1", "--vocab-size", "60", "--out", f"{d}/lm.h5"])
lm_cfg = TINY_CONFIG.replace("model: {cell: lstm", "model: {type: lm, layer_norm: true, cell: lstm").replace(
    ", attention: general", "")
lm = tiny_config(d, f"{d}/lm.h5", f"{d}/lm", text=lm_cfg, name="lm.yaml")
run(["train", lm, "--no-progress", "--set", "train.max_steps=20"])
p = run(["evaluate", "--checkpoint", f"{d}/lm/best.tern", "--data", f"{d}/lm.h5", "--split", "valid"])
check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, "a layer-normalized language model evaluates")
p = run(["generate", "--checkpoint", f"{d}/lm/best.tern", "--beam", "2", "--max-len", "8", "--prompt", "the"])
check(p.stdout.startswith("the"), f"and generates ({p.stdout!r})")
ffnn = lm_cfg.replace("type: lm", "type: ffnn_lm")
p = run(["train", tiny_config(d, f"{d}/lm.h5", f"{d}/ffnn", text=ffnn, name="ffnn.yaml")], expect=2)
check("model.layer_norm normalizes recurrent cells (model.type seq2seq or lm; ffnn_lm has none) (got true)" in p.stderr,
      f"ffnn_lm refuses it ({p.stderr.strip()[-200:]})")
print("layer_norm: ok")
finish()
