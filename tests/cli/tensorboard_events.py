"""train.tensorboard: TensorBoard itself reads the run's scalars (train/loss, train/lr, valid/loss, valid/bleu, ...)
with the values and steps of metrics.jsonl; after a resume from an older checkpoint (a rollback) it shows each step
once, the resumed job's values; without the key no events are written."""
import math
import os

from common import *  # noqa: F403

try:
    from tensorboard.backend.event_processing import event_accumulator
except ImportError:
    print("SKIP: the tensorboard Python package is not installed (scripts/setup.sh installs it)")
    raise SystemExit(77)

d = tempdir()
corpus = make_corpus(d, n=600)
text = TINY_CONFIG.replace("log_every: 5, valid_every: 10, save_every: 10",
                           "log_every: 2, valid_every: 6, save_every: 6, tensorboard: true")
cfg = tiny_config(d, corpus, f"{d}/run", text=text)


def scalars(run_dir):
    acc = event_accumulator.EventAccumulator(f"{run_dir}/tensorboard")
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected(run_dir, key, kind):
    return [(r["step"], r[key]) for r in metrics(run_dir) if r["kind"] == kind and key in r]


def same(seen, want):
    return [s for s, _ in seen] == [s for s, _ in want] and all(
        math.isclose(a, b, rel_tol=1e-6) for (_, a), (_, b) in zip(seen, want))


run(["train", cfg, "--no-progress", "--set", "train.max_steps=12"])
tb = scalars(f"{d}/run")
pairs = {"train/loss": "train_loss", "train/lr": "lr", "train/tokens_per_s": "tokens_per_s",
         "train/grad_norm": "grad_norm", "valid/loss": "valid_loss", "valid/bleu": "valid_bleu",
         "valid/chrf": "valid_chrf"}
wrong = [tag for tag, key in pairs.items() if not same(tb.get(tag, []), expected(f"{d}/run", key, tag.split("/")[0]))]
check(not wrong and len(tb["train/loss"]) == 6 and len(tb["valid/bleu"]) == 2,
      f"TensorBoard reads metrics.jsonl's scalars (differ: {wrong}; { {k: len(v) for k, v in tb.items()} })")

# A resume from step 6 redoes steps 7..12: TensorBoard keeps the resumed job's points, each step once.
first = dict(tb["train/loss"])
run(["train", cfg, "--no-progress", "--set", "train.max_steps=12", "--set", "optim.lr=0.003", "--resume",
     f"{d}/run/ckpt_step00000006.tern"])
tb = scalars(f"{d}/run")
steps = [s for s, _ in tb["train/loss"]]
check(len(os.listdir(f"{d}/run/tensorboard")) == 2 and steps == [2, 4, 6, 8, 10, 12]
      and same(tb["train/loss"], expected(f"{d}/run", "train_loss", "train")) and tb["train/loss"][4][1] != first[10],
      f"after a rollback each step appears once with the resumed job's value ({tb['train/loss']} vs {first})")

run(["train", cfg, "--no-progress", "--set", "train.max_steps=2", "--set", f"train.run_dir={d}/off",
     "--set", "train.tensorboard=false"])
check(not os.path.exists(f"{d}/off/tensorboard"), "no events without train.tensorboard")
finish()
