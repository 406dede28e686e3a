"""Local (Luong local-p) and multi-head attention through the CLI: training, validation BLEU, beam search and greedy
translation, evaluate; the keys' rules. Residual layers (model.residual) and unequal encoder and decoder depths
(model.enc_layers / dec_layers): train, resume, translate, average, ensemble. Word dropout
(model.dropout_src / dropout_tgt). model.share_embeddings on a joint-vocabulary corpus: one embedding fewer,
training, translation and averaging work; refused on a corpus with two vocabularies. (Gradients and incremental
decoding are checked in the gtests.)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=400)
src = [l for l in open(f"{d}/train.en")][:5]
write(f"{d}/in.txt", [l.rstrip("\n") for l in src])
for attention, extra in (("local", "attention_window: 2"), ("multihead", "attention_heads: 4")):
    text = TINY_CONFIG.replace("attention: general", f"attention: {attention}, {extra}")
    cfg = tiny_config(d, corpus, f"{d}/{attention}", text=text, name=f"{attention}.yaml")
    run(["train", cfg, "--set", "train.max_steps=20", "--no-progress"])
    valid = [x for x in metrics(f"{d}/{attention}") if "valid_bleu" in x]
    check(len(valid) == 2, f"{attention}: validation translated the valid split ({len(valid)} validations)")
    for beam in ("1", "3"):
        p = run(["translate", "--checkpoint", f"{d}/{attention}/best.tern", "--beam", beam, "-i", f"{d}/in.txt"])
        check(len(p.stdout.splitlines()) == 5, f"{attention}: beam {beam} translates every line")
    p = run(["evaluate", "--checkpoint", f"{d}/{attention}/best.tern", "--data", corpus, "--split", "test",
             "--beam", "2", "--json", f"{d}/{attention}.json"])
    r = json.load(open(f"{d}/{attention}.json"))
    check(r["perplexity"]["ppl_per_token"] > 1 and "score" in r["bleu"], f"{attention}: evaluate reports perplexity and BLEU")
    resolved = open(f"{d}/{attention}/config.yaml").read()
    check(f"attention: {attention}" in resolved, f"{attention}: the resolved config names it")

cfg = tiny_config(d, corpus, f"{d}/bad", text=TINY_CONFIG.replace("attention: general", "attention: multihead"))
p = run(["train", cfg, "--set", "model.attention_heads=5"], expect=2)
check("model.attention_heads must divide model.hidden (32) with multihead attention (got 5)" in p.stderr,
      "heads that do not divide hidden are refused")
p = run(["train", cfg, "--set", "model.attention=local", "--set", "model.attention_window=0"], expect=2)
check("model.attention_window must be in [1, 10000] (got 0)" in p.stderr, "window out of range")

# model.residual (GNMT / Marian --skip): two layers each side, bidirectional encoder and fused decoder, then input
# feeding; the same parameters as without (a module a layer: other names), so nothing is added; resumes exactly (with
# word dropout too), translates, evaluates and averages; refused with one layer, naming the key and the rule.
text = TINY_CONFIG.replace("layers: 1", "layers: 2")
check(text != TINY_CONFIG, "the tiny config names model.layers")
counts = {}
drop = ["model.dropout=0.1", "model.dropout_src=0.2", "model.dropout_tgt=0.2"]  # random streams across the resume
for name, sets in (("plain", []), ("residual", ["model.residual=true"]),
                   ("residual_feed", ["model.residual=true", "model.input_feeding=true", "model.cell=gru"] + drop)):
    cfg = tiny_config(d, corpus, f"{d}/{name}", text=text, name=f"{name}.yaml")
    args = ["--no-progress", "--set", "train.log_every=1"] + [x for s in sets for x in ("--set", s)]
    log = run(["train", cfg, "--set", "train.max_steps=10"] + args).stderr
    counts[name] = int(log.split(" parameters;")[0].split()[-1].replace(",", ""))
    run(["train", cfg, "--resume", "--set", "train.max_steps=20"] + args)
    if name == "residual_feed":  # the resumed run equals an uninterrupted one, bitwise
        run(["train", cfg, "--set", f"train.run_dir={d}/straight", "--set", "train.max_steps=20"] + args)
        check_same_training(f"{d}/{name}", f"{d}/straight", 20, tol=0)
    out = run(["translate", "--checkpoint", f"{d}/{name}/best.tern", "--beam", "3", "-i", f"{d}/in.txt"]).stdout
    check(len(out.splitlines()) == 5, f"{name}: beam 3 translates every line")
    check(("residual: true" in open(f"{d}/{name}/config.yaml").read()) == bool(sets), f"{name}: the resolved config")
check(counts["plain"] == counts["residual"], f"residual layers add no parameters ({counts})")
run(["average", "--last", "2", f"{d}/residual", "--out", f"{d}/residual_avg.tern"])
p = run(["evaluate", "--checkpoint", f"{d}/residual_avg.tern", "--data", corpus, "--split", "test", "--beam", "2"])
check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, "a residual model's checkpoints average and evaluate")
p = run(["translate", "--checkpoint", f"{d}/residual/best.tern", f"{d}/plain/best.tern", "-i", f"{d}/in.txt"])
check(len(p.stdout.splitlines()) == 5, "a residual model ensembles with a plain one")
p = run(["train", tiny_config(d, corpus, f"{d}/one", name="one.yaml"), "--set", "model.residual=true"], expect=2)
check("model.residual adds each layer's input to its output from the second layer on: it needs model.layers >= 2 "
      "(model.layers is 1) (got true)" in p.stderr, f"one layer refused ({p.stderr.strip()[-200:]})")

# Unequal depths (model.enc_layers / dec_layers, OpenNMT-py's enc_layers / dec_layers): a residual 3-layer
# bidirectional encoder under a 1-layer fused decoder holds exactly the 1-layer model's parameters and two encoder
# layers' more (less the input-feeding columns it has not), resumes bitwise, translates, averages, evaluates and ensembles with a 1-layer model; a 2-layer input-
# feeding decoder over a 1-layer encoder translates too. The log names both depths.
one = tiny_config(d, corpus, f"{d}/depth1", name="depth1.yaml")
log = run(["train", one, "--set", "train.max_steps=10", "--no-progress"]).stderr
base = int(log.split(" parameters;")[0].split()[-1].replace(",", ""))
per_layer = 2 * (4 * 16 * (32 + 16) + 2 * 4 * 16)  # a bidirectional encoder layer above the first: 16 a direction
for name, sets, extra in (("deep_enc", ["model.enc_layers=3", "model.dec_layers=1", "model.residual=true",
                                        "model.input_feeding=false"], 2 * per_layer - 4 * 32 * 32),
                          ("deep_dec", ["model.enc_layers=1", "model.dec_layers=2"], 4 * 32 * (32 + 32) + 2 * 4 * 32)):
    cfg = tiny_config(d, corpus, f"{d}/{name}", name=f"{name}.yaml")
    args = ["--no-progress", "--set", "train.log_every=1"] + [x for s in sets for x in ("--set", s)]
    log = run(["train", cfg, "--set", "train.max_steps=10"] + args).stderr
    n = int(log.split(" parameters;")[0].split()[-1].replace(",", ""))
    check(n - base == extra, f"{name}: {n} parameters, {n - base} more than one layer each side (expected {extra})")
    depths = sets[0][-1] + "+" + sets[1][-1]
    check(f"(lstm {depths}x32," in log, f"{name}: the log names both depths ({log.splitlines()[0][:160]})")
    run(["train", cfg, "--resume", "--set", "train.max_steps=20"] + args)
    run(["train", cfg, "--set", f"train.run_dir={d}/{name}_straight", "--set", "train.max_steps=20"] + args)
    check_same_training(f"{d}/{name}", f"{d}/{name}_straight", 20, tol=0)
    out = run(["translate", "--checkpoint", f"{d}/{name}/best.tern", "--beam", "3", "-i", f"{d}/in.txt"]).stdout
    check(len(out.splitlines()) == 5, f"{name}: beam 3 translates every line")
    run(["average", "--last", "2", f"{d}/{name}", "--out", f"{d}/{name}_avg.tern"])
    p = run(["evaluate", "--checkpoint", f"{d}/{name}_avg.tern", "--data", corpus, "--split", "test", "--beam", "2"])
    check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, f"{name}: checkpoints average and evaluate")
    p = run(["translate", "--checkpoint", f"{d}/{name}/best.tern", f"{d}/depth1/best.tern", "-i", f"{d}/in.txt"])
    check(len(p.stdout.splitlines()) == 5, f"{name}: ensembles with a one-layer model")
p = run(["train", one, "--set", "model.enc_layers=2", "--set", f"train.init_from={d}/depth1/best.tern", "--set",
         f"train.run_dir={d}/depth2"], expect=5)
check("train.init_from needs the model it was trained with: model.enc_layers is 1 there and 2 here" in p.stderr,
      f"fine-tuning a 1-layer checkpoint as a 2-layer encoder is refused ({p.stderr[-300:]})")
# The same model spelled with both sides' depths: fine-tuning from it is allowed, and so is resuming with the spelling
# changed.
log = run(["train", one, "--set", "model.enc_layers=1", "--set", "model.dec_layers=1", "--set", "model.layers=3",
           "--set", f"train.init_from={d}/depth1/best.tern", "--set", f"train.run_dir={d}/depth1b", "--set",
           "train.max_steps=2", "--no-progress"]).stderr
check("(lstm 1x32," in log, f"the log names the depth built, not model.layers ({log.splitlines()[0][:120]})")
run(["train", one, "--resume", "--set", "model.enc_layers=1", "--set", "model.dec_layers=1", "--set",
     "train.max_steps=12", "--no-progress"])
check(os.path.exists(f"{d}/depth1b/ckpt_step00000002.tern") and os.path.exists(f"{d}/depth1/ckpt_step00000012.tern"),
      "model.layers=1 and enc_layers=dec_layers=1 are one model for init_from and resume")

# Word dropout (model.dropout_src / dropout_tgt, Marian --dropout-src/--dropout-trg): training with it takes other
# losses than without (same seed), evaluation is untouched by it, and a run may fine-tune from a checkpoint trained
# with another word dropout (model.dropout may differ likewise); a language model has no source words to drop.
losses = {}
for name, sets in (("nodrop", []), ("worddrop", ["model.dropout_src=0.3", "model.dropout_tgt=0.2"])):
    cfg = tiny_config(d, corpus, f"{d}/{name}", name=f"{name}.yaml")
    run(["train", cfg, "--set", "train.max_steps=10", "--no-progress"] + [x for s in sets for x in ("--set", s)])
    losses[name] = [x["train_loss"] for x in metrics(f"{d}/{name}") if "train_loss" in x]
    check(("dropout_src: 0.3" in open(f"{d}/{name}/config.yaml").read()) == bool(sets), f"{name}: the resolved config")
check(losses["nodrop"][0] != losses["worddrop"][0], f"word dropout changes the training loss ({losses})")
ckpt = f"{d}/worddrop/ckpt_step00000010.tern"
ev = [json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--split", "test", "--no-translate"]).stdout)
      ["perplexity"]["ppl_per_token"] for _ in range(2)]
check(ev[0] == ev[1], f"evaluation is deterministic with word dropout in the model ({ev})")
run(["train", tiny_config(d, corpus, f"{d}/ft", name="ft.yaml"), "--set", f"train.init_from={ckpt}", "--set",
     "train.max_steps=2", "--no-progress"])
check(os.path.exists(f"{d}/ft/ckpt_step00000002.tern"), "fine-tuning without word dropout from a run with it")

# Shared source/target embeddings (three-way with tie_embeddings) need one vocabulary.
os.makedirs(f"{d}/joint")
joint = make_corpus(f"{d}/joint", n=400, extra=("--joint-vocab",))
cfg = tiny_config(d, joint, "X", name="joint.yaml")
sizes = {}
for name, sets in (("separate", []), ("shared", ["model.share_embeddings=true"]),
                   ("all", ["model.share_embeddings=true", "model.tie_embeddings=true"])):
    args = ["train", cfg, "--no-progress", "--set", f"train.run_dir={d}/{name}", "--set", "train.max_steps=20"]
    for s in sets:
        args += ["--set", s]
    log = run(args).stderr
    sizes[name] = int(log.split(" parameters;")[0].split()[-1].replace(",", ""))
check(sizes["separate"] - sizes["shared"] == sizes["shared"] - sizes["all"] > 0
      and (sizes["separate"] - sizes["shared"]) % 32 == 0,
      f"sharing drops one embedding, tying one more ({sizes})")
out = run(["translate", "--checkpoint", f"{d}/all/best.tern", "--beam", "3", "-i", f"{d}/in.txt"]).stdout
check(len(out.splitlines()) == 5, "a three-way shared model translates")
run(["average", "--last", "2", f"{d}/all", "--out", f"{d}/all_avg.tern"])
p = run(["evaluate", "--checkpoint", f"{d}/all_avg.tern", "--data", joint, "--split", "test", "--no-translate"])
check(json.loads(p.stdout)["perplexity"]["ppl_per_token"] > 1, "its checkpoints average and evaluate")
p = run(["train", tiny_config(d, corpus, f"{d}/two", name="two.yaml"), "--set", "model.share_embeddings=true"],
        expect=2)
check("model.share_embeddings needs one vocabulary for both sides" in p.stderr and "--joint-vocab" in p.stderr,
      f"two vocabularies refused ({p.stderr.strip()[-200:]})")
finish()
