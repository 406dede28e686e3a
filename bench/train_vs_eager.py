#!/usr/bin/env python3
"""tern against eager PyTorch on the same model config, batches and precisions, in one run on one machine:
runs `tern bench train` and bench/eager_reference.py with the same arguments and prints tokens/s and their ratio
(and each precision against fp32). Extra arguments go to both (after --: --batch, --src-len, --tgt-len,
--src-vocab, --tgt-vocab, --warmup, --steps). --set section.key=value changes the config for both.

    python3 bench/train_vs_eager.py configs/bench_lm.yaml --precisions fp32 fp16 bf16 -- --tgt-vocab 32000
    python3 bench/train_vs_eager.py configs/bench_seq2seq.yaml --set model.input_feeding=false
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("config")
ap.add_argument("--precisions", nargs="+", default=["fp32"])
ap.add_argument("--tern", default=os.environ.get("TERN", os.path.join(HERE, "..", "build", "cli", "tern")))
ap.add_argument("--json", help="write both result sets and the ratios here")
ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                help="override a config key for both benchmarks (repeatable)")
a, extra = ap.parse_known_args()  # the rest (after --) goes to both benchmarks
a.extra = [x for x in extra if x != "--"]
config_name = a.config + "".join(f" --set {kv}" for kv in a.set)

with tempfile.TemporaryDirectory() as d:
    if a.set:  # one config file with the overrides, read by both
        import yaml
        cfg = yaml.safe_load(open(a.config)) or {}
        for kv in a.set:
            key, _, value = kv.partition("=")
            section, _, name = key.partition(".")
            if not name:
                sys.exit(f"--set {kv}: expected section.key=value")
            cfg.setdefault(section, {})[name] = yaml.safe_load(value)
        a.config = f"{d}/config.yaml"
        yaml.safe_dump(cfg, open(a.config, "w"))
    subprocess.run([a.tern, "bench", "train", a.config, "--precisions", *a.precisions, "--json", f"{d}/tern.json",
                    *a.extra], check=True, stdout=sys.stderr)
    tern = json.load(open(f"{d}/tern.json"))
    eager = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "eager_reference.py"), a.config,
                                       "--precisions", *a.precisions, *a.extra], check=True, capture_output=True,
                                      text=True).stdout)
base_t = {r["precision"]: r["tokens_per_s_per_rank"] for r in tern}
base_e = {r["precision"]: r["tokens_per_s"] for r in eager}
print(f"{config_name}: {tern[0]['model']}, {tern[0]['parameters']} parameters, device {tern[0]['device']}"
      + (f" ({eager[0]['gpu']})" if "gpu" in eager[0] else ""))
print(f"{'precision':10s}{'tern tok/s':>14s}{'eager tok/s':>14s}{'tern/eager':>12s}{'tern vs fp32':>14s}{'eager vs fp32':>15s}")
rows = []
for p in a.precisions:
    t, e = base_t[p], base_e[p]
    vs_t = t / base_t["fp32"] if "fp32" in base_t else float("nan")
    vs_e = e / base_e["fp32"] if "fp32" in base_e else float("nan")
    print(f"{p:10s}{t:14.0f}{e:14.0f}{t / e:12.2f}{vs_t:14.2f}{vs_e:15.2f}")
    rows.append({"precision": p, "tern_tokens_per_s": t, "eager_tokens_per_s": e, "ratio": t / e})
if a.json:
    json.dump({"config": config_name, "tern": tern, "eager": eager, "ratios": rows}, open(a.json, "w"),
              indent=1)
