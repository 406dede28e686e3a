"""The GPU path end to end, through the CLI (label cuda; skipped with the reason where no GPU is visible):
`mpirun -np 1 tern train` on CUDA through the NCCL backend, in fp32, fp16 (dynamic loss scaling) and bf16; an exact
resume on the GPU (a run of 2N steps equals N steps, stopped, resumed for N more: per-step losses and parameters);
residual layers of unequal depths in bf16; layer-normalized cells in bf16;
the checkpoint trained on the GPU evaluates on the CPU; guided alignment in fp16; translate --alignment, translate --lm --shortlist,
a right-to-left model in bf16 and translate --rescore, and train.init_from on the GPU;
`tern bench allreduce` runs NCCL with one rank."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

try:
    import torch
    has_cuda = torch.cuda.is_available()
except ImportError:
    has_cuda = False
if not has_cuda:
    print("SKIP: no CUDA device visible (this test runs on the GPU machine: scripts/gpu_check.sh)")
    sys.exit(77)

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("device: cpu", "device: cuda").replace("dropout: 0.0", "dropout: 0.2").replace(
    "log_every: 5, valid_every: 10, save_every: 10", "log_every: 1, valid_every: 4, save_every: 100")
cfg = tiny_config(d, corpus, "X", text=text)
N = 6


def train(run_dir, steps, precision="fp32", resume=False, sets=()):
    cmd = ["mpirun", "-np", "1", TERN, "train", cfg, "--set", f"train.run_dir={run_dir}", "--set",
           f"train.max_steps={steps}", "--set", f"train.precision={precision}", "--set", "distributed.backend=nccl",
           "--no-progress"] + (["--resume"] if resume else []) + [x for s in sets for x in ("--set", s)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        print(p.stderr[-2000:])
    return p


# NCCL training in each precision: it runs, says so, and learns.
for prec in ("fp32", "fp16", "bf16"):
    p = train(f"{d}/{prec}", 3 * N, prec)
    log = open(f"{d}/{prec}/train.log").read() if os.path.exists(f"{d}/{prec}/train.log") else ""
    env = json.load(open(f"{d}/{prec}/environment.json")) if os.path.exists(f"{d}/{prec}/environment.json") else {}
    check(p.returncode == 0 and env.get("backend") == "nccl" and env.get("device", "").startswith("cuda")
          and env.get("precision") == prec, f"{prec}: mpirun -np 1 trains on {env.get('device')} through "
          f"{env.get('backend')} ({env.get('gpus')})")
    losses = [r["train_loss"] for r in metrics(f"{d}/{prec}") if "train_loss" in r]
    check(len(losses) == 3 * N and losses[-1] < losses[0], f"{prec}: loss falls ({losses[0]:.3f} -> {losses[-1]:.3f})"
          if losses else f"{prec}: no losses")
    if prec == "fp16":
        check(all("loss_scale" in r for r in metrics(f"{d}/{prec}") if "train_loss" in r), "fp16: loss scale logged")

# Exact resume on the GPU.
full, part = f"{d}/full", f"{d}/part"
ok = train(full, 2 * N).returncode == 0 and train(part, N).returncode == 0 and \
    train(part, 2 * N, resume=True).returncode == 0
check(ok, "GPU runs for the resume test succeed")
a = [x["train_loss"] for x in metrics(full) if "train_loss" in x]
b = [x["train_loss"] for x in metrics(part) if "train_loss" in x]
check(len(a) == 2 * N and a == b, f"GPU resume: per-step losses identical ({a[-3:]} vs {b[-3:]})")
diff = subprocess.run([CKPT_DIFF, f"{full}/ckpt_step{2 * N:08d}.tern", f"{part}/ckpt_step{2 * N:08d}.tern"],
                      capture_output=True, text=True)
check(diff.returncode == 0 and float(diff.stdout) == 0.0, f"GPU resume: final parameters identical ({diff.stdout.strip()})")

# A GPU checkpoint evaluates on the CPU, and on the GPU with the same perplexity.
ckpt = f"{full}/ckpt_step{2 * N:08d}.tern"
cpu = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--device", "cpu", "--no-translate"]).stdout)
gpu = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--device", "cuda", "--no-translate"]).stdout)
pc, pg = cpu["perplexity"]["ppl_per_token"], gpu["perplexity"]["ppl_per_token"]
check(abs(pc - pg) / pc < 1e-4, f"GPU checkpoint: CPU and GPU perplexity agree ({pc:.5f} vs {pg:.5f})")

# Residual layers (model.residual: a cuDNN module a layer) in bf16 on the GPU, three in the encoder and two in the
# decoder (model.enc_layers / dec_layers): they train, and their checkpoint has the same perplexity on the GPU as on the
# CPU.
p = train(f"{d}/residual", N, "bf16", sets=("model.enc_layers=3", "model.dec_layers=2", "model.residual=true"))
rc = f"{d}/residual/ckpt_step{N:08d}.tern"
rp = {dev: json.loads(run(["evaluate", "--checkpoint", rc, "--data", corpus, "--device", dev, "--no-translate"])
                      .stdout)["perplexity"]["ppl_per_token"] if p.returncode == 0 else 0 for dev in ("cpu", "cuda")}
check(p.returncode == 0 and abs(rp["cpu"] - rp["cuda"]) / rp["cpu"] < 1e-4,
      f"residual layers train in bf16 on the GPU; CPU and GPU perplexity agree ({rp})")

# The stepped cells (not cuDNN) in bf16 on the GPU: layer-normalized (model.layer_norm), GRU with input feeding and an
# LSTM stack; a plain LSTM stack with recurrent dropout (model.dropout_rnn); a GRU encoder with deep transition
# (model.enc_cell_depth). They train, and the checkpoints have the same perplexity on the GPU as on the CPU.
for cell, feed, extra in (("gru", "true", "model.layer_norm=true"), ("lstm", "false", "model.layer_norm=true"),
                          ("lstm", "false", "model.dropout_rnn=0.2"), ("gru", "false", "model.enc_cell_depth=2")):
    name = f"{d}/{extra.split('=')[0].split('.')[1]}_{cell}"
    p = train(name, N, "bf16", sets=(extra, f"model.cell={cell}", f"model.input_feeding={feed}",
                                     "model.layers=2", "model.residual=true"))
    nc = f"{name}/ckpt_step{N:08d}.tern"
    npp = {dev: json.loads(run(["evaluate", "--checkpoint", nc, "--data", corpus, "--device", dev, "--no-translate"])
                           .stdout)["perplexity"]["ppl_per_token"] if p.returncode == 0 else 0 for dev in ("cpu", "cuda")}
    check(p.returncode == 0 and abs(npp["cpu"] - npp["cuda"]) / npp["cpu"] < 1e-4,
          f"{extra}: {cell} cells train in bf16 on the GPU; CPU and GPU perplexity agree ({npp})")

# Guided alignment on the GPU in fp16 (the attention's cost in fp32 under autocast, with dynamic loss scaling): it
# trains, its cost is finite and the loss falls.
src_lines = [l.rstrip("\n") for l in open(f"{d}/train.en")]
write(f"{d}/train.al", [" ".join(f"{i}-{len(s.split()) - 2 - i}" for i in range(len(s.split()) - 1)) for s in src_lines])
run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--train-align", f"{d}/train.al",
     "--valid-fraction", "0.1", "--vocab-size", "60", "--out", f"{d}/aligned.h5"])
p = train(f"{d}/guided", 3 * N, "fp16", sets=(f"data.corpus={d}/aligned.h5", "train.guided_alignment_weight=1.0"))
rows = [r for r in metrics(f"{d}/guided") if "train_align" in r] if p.returncode == 0 else []
cost = [r["train_align"] for r in rows]
check(len(cost) == 3 * N and all(0 < c < 1e9 for c in cost) and rows[-1]["train_loss"] < rows[0]["train_loss"],
      f"guided alignment trains in fp16 on the GPU (finite cost {[round(c, 3) for c in cost]}, the loss falls)")

# Word alignment on the GPU (with the coverage penalty computed there): every line gets its links; the translations
# are the CPU's (greedy, a trained model).
write(f"{d}/src.txt", [l.rstrip("\n") for l in open(f"{d}/train.en")][:8])
al = {dev: run(["translate", "--checkpoint", ckpt, "--device", dev, "--beam", "1", "--alignment", "--coverage-penalty",
               "0.2", "-i", f"{d}/src.txt"])
      .stdout.splitlines() for dev in ("cpu", "cuda")}
same = sum(a.split(" ||| ")[0] == b.split(" ||| ")[0] for a, b in zip(al["cpu"], al["cuda"]))
check(len(al["cuda"]) == 8 and all(" ||| " in l for l in al["cuda"]) and same >= 6,
      f"translate --alignment on the GPU ({same}/8 translations as on the CPU)")

# Shallow fusion with a language model (--lm) and a shortlist on the GPU: the translations are the CPU's.
with open(f"{d}/train.es") as f:
    write(f"{d}/mono.es", f.read().splitlines())
run(["prepare", "--train-text", f"{d}/mono.es", "--vocab-from", corpus, "--valid-fraction", "0.1", "--out", f"{d}/lm.h5"])
run(["train", tiny_config(d, f"{d}/lm.h5", f"{d}/lm_run", name="lm.yaml"), "--set", "model.type=lm", "--set",
     "train.max_steps=10", "--no-progress"])
run(["shortlist", "--data", corpus, "--out", f"{d}/lex.bin", "--first", "10", "--best", "5"])
fused = {dev: run(["translate", "--checkpoint", ckpt, "--device", dev, "--beam", "4", "--lm",
                   f"{d}/lm_run/ckpt_step00000010.tern", "--lm-weight", "0.3", "--shortlist", f"{d}/lex.bin", "-i",
                   f"{d}/src.txt"]).stdout.splitlines() for dev in ("cpu", "cuda")}
same = sum(a == b for a, b in zip(fused["cpu"], fused["cuda"]))
check(len(fused["cuda"]) == 8 and same >= 6, f"translate --lm --shortlist on the GPU ({same}/8 translations as on the CPU)")
p = run(["translate", "--checkpoint", ckpt, "--device", "cuda", "--cpu-gemm", "onednn", "-i", f"{d}/src.txt"], expect=2)
check("--cpu-gemm onednn is for decoding on the CPU" in p.stderr, f"--cpu-gemm on the GPU refused ({p.stderr[-120:]})")

# A right-to-left model (model.right_left) in bf16 on the GPU: it trains, translates there as on the CPU (greedy), and
# reranks the left-to-right model's beam there (--rescore) as on the CPU.
p = train(f"{d}/r2l", 3 * N, "bf16", sets=("model.right_left=true",))
r2l = f"{d}/r2l/ckpt_step{3 * N:08d}.tern"
losses = [r["train_loss"] for r in metrics(f"{d}/r2l") if "train_loss" in r] if p.returncode == 0 else []
check(len(losses) == 3 * N and losses[-1] < losses[0], f"right to left trains in bf16 on the GPU ({losses[-1:]})")
outs = {dev: run(["translate", "--checkpoint", r2l, "--device", dev, "--precision", "fp32", "--beam", "1", "-i",
                  f"{d}/src.txt"]).stdout.splitlines() for dev in ("cpu", "cuda")}
same = sum(a == b for a, b in zip(outs["cpu"], outs["cuda"]))
check(len(outs["cuda"]) == 8 and same >= 6, f"right to left translates on the GPU ({same}/8 as on the CPU)")
rer = {dev: run(["translate", "--checkpoint", ckpt, "--device", dev, "--beam", "4", "--rescore", r2l, "--nbest", "4",
                 "--precision", "fp32", "-i", f"{d}/src.txt"]).stdout.splitlines() for dev in ("cpu", "cuda")}
same = sum(a.split("\t")[0] == b.split("\t")[0] for a, b in zip(rer["cpu"], rer["cuda"]))
check(len(rer["cuda"]) == 8 and same >= 6, f"translate --rescore on the GPU ({same}/8 best as on the CPU)")

# Pretrained target embeddings, frozen, in bf16 through NCCL with the overlapped all-reduce: the table keeps the file's
# vectors (it is never reduced nor stepped) while the rest learns.
run(["encode", "--corpus", corpus, "--side", "tgt", "-i", f"{d}/train.es", "-o", f"{d}/tgt.pieces"])
toks = sorted({t for l in open(f"{d}/tgt.pieces", encoding="utf-8") for t in l.split()})
vec = {t: [round(((i * 31 + k * 7) % 19 - 9) / 10, 1) for k in range(32)] for i, t in enumerate(toks)}
write(f"{d}/tgt.vec", [t + " " + " ".join(map(str, v)) for t, v in vec.items()])
p = train(f"{d}/frozen", 3 * N, "bf16", sets=(f"train.tgt_embeddings={d}/tgt.vec", "train.freeze_embeddings=tgt",
                                             "distributed.overlap=true"))
losses = [r["train_loss"] for r in metrics(f"{d}/frozen") if "train_loss" in r] if p.returncode == 0 else []
rows = []
if p.returncode == 0:
    out = subprocess.run([os.environ.get("TERN_CKPT_DIFF", "build/tests/tern_ckpt_diff"), "--param",
                          f"{d}/frozen/ckpt_step{3 * N:08d}.tern", "tgt_emb.weight"], capture_output=True, text=True)
    rows = {tuple(round(float(x), 1) for x in l.split()) for l in out.stdout.splitlines()[1:]}
kept = sum(tuple(v) in rows for v in vec.values())
check(len(losses) == 3 * N and losses[-1] < losses[0] and kept == len(vec),
      f"frozen pretrained embeddings on the GPU: {kept}/{len(vec)} vectors kept, loss {losses[:1]} -> {losses[-1:]}")

# Fine-tuning on the GPU: one step at a negligible learning rate from a checkpoint keeps its perplexity.
p = subprocess.run(["mpirun", "-np", "1", TERN, "train", cfg, "--set", f"train.run_dir={d}/ft", "--set",
                    "train.max_steps=1", "--set", "optim.lr=1e-9", "--set", f"train.init_from={ckpt}", "--set",
                    "distributed.backend=nccl", "--no-progress"], capture_output=True, text=True, timeout=300)
ft = f"{d}/ft/ckpt_step00000001.tern"
pf = json.loads(run(["evaluate", "--checkpoint", ft, "--data", corpus, "--device", "cuda", "--no-translate"]).stdout)[
    "perplexity"]["ppl_per_token"] if p.returncode == 0 else 0
check(abs(pf - pg) / pg < 1e-4, f"train.init_from on the GPU starts from the checkpoint (ppl {pf:.5f} vs {pg:.5f})")

# NCCL all-reduce, one rank.
p = subprocess.run(["mpirun", "-np", "1", TERN, "bench", "allreduce", "--sizes", "1048576", "--iters", "5"],
                   capture_output=True, text=True, timeout=120)
check(p.returncode == 0 and "nccl" in p.stdout, f"bench allreduce through NCCL: {p.stdout.strip()[-300:]}")
finish()
