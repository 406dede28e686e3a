"""model.enc_cell_depth (deep transition in the encoder, Marian --enc-cell-depth) through the CLI: a seq2seq model
(two layers, bidirectional, plain and layer-normalized) trains, resumes bitwise, translates with beam search
(forced decoding of its translations scores them as teacher forcing does), evaluates and averages; the log and the
resolved config name the depth; a checkpoint without it does not initialize a run with it (exit 5, naming the key); a
language model and depths out of [1, 8] are refused (exit 2). (The formula, padding and gradients: the gtests
RnnStack.DeepTransitionStepsCellsInOrder and DeepTransition.EncoderCellsStepTogether.)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d, corpus, text = two_layer_fixture()


def train(name, sets, steps=10):
    return train_variant(d, corpus, text, name, sets, steps)


deep = ["model.enc_cell_depth=2", "model.dropout=0.1"]
log = check_resumes_bitwise(d, corpus, text, "deep", deep)
check("encoder cell depth 2" in log, "the training log names the encoder's cell depth")
check("enc_cell_depth: 2" in open(f"{d}/deep/config.yaml").read(), "the resolved config names it")

best = f"{d}/deep/best.tern"
p = run(["translate", "--checkpoint", best, "--beam", "3", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, f"beam 3 translates every line ({len(p.stdout.splitlines())} lines)")
write(f"{d}/hyp.txt", p.stdout.splitlines())
check_forced_scores(best, f"{d}/in.txt", f"{d}/hyp.txt", 5, "deep transition: ")
p = run(["evaluate", "--checkpoint", best, "--data", corpus, "--split", "test", "--beam", "2"])
check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, "evaluate reports perplexity")
run(["average", "--last", "2", f"{d}/deep", "--out", f"{d}/avg.tern"])
p = run(["translate", "--checkpoint", f"{d}/avg.tern", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "its average translates")
_, _, norm_log = train("deep_norm", deep + ["model.layer_norm=true", "model.cell=gru", "model.input_feeding=true"])
p = run(["translate", "--checkpoint", f"{d}/deep_norm/best.tern", "--beam", "2", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5 and "layer-normalized, encoder cell depth 2" in norm_log,
      "a layer-normalized GRU with deep transition and input feeding trains and translates")

# A checkpoint of a plain encoder does not initialize one with transitions: the refusal names the key.
train("plain", ["model.dropout=0.1"])
cfg = tiny_config(d, corpus, f"{d}/init", text=text, name="init.yaml")
p = run(["train", cfg, "--no-progress", "--set", f"train.init_from={d}/plain/best.tern", "--set",
         "model.enc_cell_depth=2"], expect=5)
check("model.enc_cell_depth" in p.stderr, f"init_from names model.enc_cell_depth ({p.stderr.strip()[-300:]})")

# Refusals: exit 2, the key, the rule and the value; nothing written.
lm_text = TINY_CONFIG.replace("model: {cell: lstm", "model: {type: lm, enc_cell_depth: 2, cell: lstm").replace(
    ", attention: general", "")
for name, model_text, needle in [
        ("lm", lm_text, "model.enc_cell_depth deepens a seq2seq model's encoder cells: a language model has no encoder "
         "(got 2)"),
        ("zero", text.replace("layers: 2", "layers: 2, enc_cell_depth: 0"),
         "model.enc_cell_depth must be in [1, 8] (1: one cell a step) (got 0)"),
        ("nine", text.replace("layers: 2", "layers: 2, enc_cell_depth: 9"), "(got 9)"),
        ("type", text.replace("layers: 2", "layers: 2, enc_cell_depth: 1.5"),
         "model.enc_cell_depth must be an integer (got '1.5')")]:
    p = run(["train", tiny_config(d, corpus, f"{d}/never_{name}", text=model_text, name=f"{name}.yaml")], expect=2)
    check(needle in p.stderr, f"{name}: the refusal says {needle!r} ({p.stderr.strip()[-200:]})")
    check(not os.path.exists(f"{d}/never_{name}"), f"{name}: nothing written")
print("deep_transition: ok")
finish()
