"""Local (Luong local-p) and multi-head attention through the CLI: training, validation BLEU, beam search and greedy
translation, evaluate; the keys' rules. model.share_embeddings on a joint-vocabulary corpus: one embedding fewer,
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
