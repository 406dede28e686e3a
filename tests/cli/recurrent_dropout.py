"""model.dropout_rnn (variational dropout on the recurrent state, Marian --dropout-rnn) through the CLI: a seq2seq
model (residual, bidirectional; with input feeding too) trains with it, resumes bitwise (its masks come from the
checkpointed random state), and translates and evaluates exactly as a model of the same weights without it (decoding
never drops); a checkpoint trained without it initializes a run with it; a recurrent language model in stream mode
trains with it; ffnn_lm and out-of-range rates are refused. (Masks, the stepped path and gradients: the gtests
RnnStack.VariationalDropoutKeepsOneMaskASentence and RecurrentDropout.StepsInTrainingOnly.)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d, corpus, text = two_layer_fixture()
sets = ["model.dropout_rnn=0.3", "model.residual=true", "model.dropout=0.1", "model.dropout_tgt=0.1"]


def train(name, sets, steps=10):
    return train_variant(d, corpus, text, name, sets, steps)


log = check_resumes_bitwise(d, corpus, text, "rnn_drop", sets)
check("recurrent dropout 0.3" in log, "the training log names the recurrent dropout")
check("dropout_rnn: 0.3" in open(f"{d}/rnn_drop/config.yaml").read(), "the resolved config names it")
# Without it, the same seed trains another model (the masks change the updates).
train("plain", [s for s in sets if "dropout_rnn" not in s], steps=20)
losses = {n: [json.loads(l)["train_loss"] for l in open(f"{d}/{n}/metrics.jsonl") if '"train_loss"' in l]
          for n in ("rnn_drop", "plain")}
check(losses["rnn_drop"][-1] != losses["plain"][-1], f"recurrent dropout changes training ({losses})")

# Decoding never drops: the checkpoint translates and scores as the same weights in a config without the key.
best = f"{d}/rnn_drop/best.tern"
p = run(["translate", "--checkpoint", best, "--beam", "3", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "a model trained with recurrent dropout translates every line")
first = run(["evaluate", "--checkpoint", best, "--data", corpus, "--split", "test", "--no-translate"]).stdout
again = run(["evaluate", "--checkpoint", best, "--data", corpus, "--split", "test", "--no-translate"]).stdout
check(json.loads(first)["perplexity"] == json.loads(again)["perplexity"], "evaluation is deterministic (no masks)")
# A plain checkpoint initializes a run with recurrent dropout (the rate only changes training), input feeding too.
cfg = tiny_config(d, corpus, f"{d}/init", text=text, name="init.yaml")
run(["train", cfg, "--no-progress", "--set", f"train.init_from={d}/plain/best.tern", "--set", "model.residual=true",
     "--set", "model.dropout_rnn=0.2", "--set", "train.max_steps=2"])
check(os.path.exists(f"{d}/init/best.tern"), "init_from accepts another dropout_rnn")
train("feed_gru", ["model.dropout_rnn=0.3", "model.cell=gru", "model.input_feeding=true", "model.layer_norm=true"])
p = run(["translate", "--checkpoint", f"{d}/feed_gru/best.tern", "--beam", "2", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "a layer-normalized GRU with input feeding and recurrent dropout translates")

# A recurrent language model in stream mode (its state carried across windows).
write(f"{d}/text.txt", [l.rstrip("\n") for l in open(f"{d}/train.en")])
run(["prepare", "--train-text", f"{d}/text.txt", "--valid-fraction", "0.1", "--vocab-size", "60", "--out", f"{d}/lm.h5"])
lm_text = TINY_CONFIG.replace("model: {cell: lstm", "model: {type: lm, dropout_rnn: 0.25, cell: lstm").replace(
    ", attention: general", "")
lm = tiny_config(d, f"{d}/lm.h5", f"{d}/lm", text=lm_text, name="lm.yaml")
run(["train", lm, "--no-progress", "--set", "train.max_steps=20", "--set", "data.lm_mode=stream"])
p = run(["evaluate", "--checkpoint", f"{d}/lm/best.tern", "--data", f"{d}/lm.h5", "--split", "valid"])
check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, "a language model trained with it evaluates")

# Refusals: exit 2, the key, the rule and the value; nothing written.
for name, model_text, needle in [
        ("ffnn", lm_text.replace("type: lm", "type: ffnn_lm"),
         "model.dropout_rnn drops recurrent units (model.type seq2seq or lm; ffnn_lm has none) (got 0.25)"),
        ("range", text.replace("layers: 2", "layers: 2, dropout_rnn: 1.0"), "model.dropout_rnn must be in [0, 1) (got 1)"),
        ("negative", text.replace("layers: 2", "layers: 2, dropout_rnn: -0.1"),
         "model.dropout_rnn must be in [0, 1) (got -0.1)"),
        ("type", text.replace("layers: 2", "layers: 2, dropout_rnn: half"), "model.dropout_rnn must be a number (got 'half')")]:
    data = f"{d}/lm.h5" if name == "ffnn" else corpus
    p = run(["train", tiny_config(d, data, f"{d}/never_{name}", text=model_text, name=f"{name}.yaml")], expect=2)
    check(needle in p.stderr, f"{name}: the refusal says {needle!r} ({p.stderr.strip()[-200:]})")
    check(not os.path.exists(f"{d}/never_{name}"), f"{name}: nothing written")
print("recurrent_dropout: ok")
finish()
