"""tern report on a real run directory (training, evaluation with attention samples, an n-gram baseline), then the
page rendered by headless Chromium: its charts drew, its tables are there, no script error; plus report.json,
report.md and the bad inputs."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=400)
run_dir = f"{d}/run"
cfg = tiny_config(d, corpus, run_dir)
run(["train", cfg, "--no-progress"])
p = run(["evaluate", "--checkpoint", f"{run_dir}/best.tern", "--data", corpus, "--beam", "2", "--json",
         f"{run_dir}/test_eval.json"])
ev = json.loads(p.stdout)
check("chrf" in ev and ev["chrf"]["name"] == "chrF2" and len(ev["samples"]) == 3, "evaluate adds chrF and attention samples")
s = ev["samples"][0]
check(len(s["attention"]) == len(s["output"]) and all(abs(sum(r) - 1) < 0.01 for r in s["attention"]),
      "attention rows: one per output piece, each sums to 1")
run(["evaluate", "--checkpoint", f"{run_dir}/best.tern", "--data", corpus, "--beam", "3", "--early-stop",
     "--no-repeat-ngram-size", "3", "--json", f"{run_dir}/test_eval_nr3.json"])
with open(f"{d}/text.txt", "w") as f:
    f.write("\n".join(l for l in open(f"{d}/train.es").read().splitlines()) + "\n")
p = run(["ngram", "--order", "2", "--smoothing", "interpolated", "--train", f"{d}/text.txt", "--test", f"{d}/text.txt",
         "-f", "json"])
open(f"{run_dir}/ngram_o2.json", "w").write(p.stdout)

p = run(["report", run_dir])
html_path, json_path, md_path = p.stdout.split()
html = open(html_path, encoding="utf-8").read()
check(not re.search(r"(src|href)=\"(https?:)?//", html) and "@import" not in html, "self-contained: no external resource")
check(html.count("<svg class=\"chart\"") == 6 and "validation BLEU and chrF" in html,
      "training curves as inline SVG charts, validation BLEU/chrF among them (no loss-scale chart without scaling)")
check("best.tern" in html and "ckpt_step00000030.tern" in html and "test_eval.json" in html, "checkpoint and evaluation tables")
check("<td>beam 2</td>" in html and "<td>beam 3, early-stop, no-repeat 3</td>" in html,
      "the evaluations table says how each one searched")
check("2-gram interpolated" in html and "table class=\"attn\"" in html, "n-gram baseline table and attention heat maps")
data = json.load(open(json_path))
check(data["summary"]["steps"] == 30 and all(c["status"] == "ok" for c in data["checkpoints"]), "report.json summary and verified checkpoints")
check(data["environment"]["world_size"] == 1 and data["environment"]["precision"] == "fp32", "environment recorded by tern train")
md = open(md_path).read()
check(md.startswith("# tern report:") and "| best.tern |" in md, "Markdown summary")
stats = data["corpus"]["filter_stats"]
check(data["corpus"]["paths"] == [corpus] and stats["train"]["kept"] > 0 and "in_train_src" in stats["test"] and
      "## Corpus" in md and "<h2>Corpus</h2>" in html, f"the corpus and prepare's statistics are reported ({data['corpus']})")

# A real browser: headless Chromium renders the page; its inline check counts drawn charts and records errors.
attrs = chromium_render(html_path, d)
if attrs is None:
    check(False, "chromium is installed (scripts/setup.sh installs Debian's chromium)")
else:
    check(attrs.get("charts") and attrs.get("charts") == attrs.get("drawn") and int(attrs["charts"]) >= 5,
          f"Chromium drew every chart ({attrs})")
    check(int(attrs.get("tables", 0)) >= 4 and "errors" not in attrs, f"tables present and no script error ({attrs})")
    shot = f"{os.path.dirname(html_path)}/screenshot.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", f"--user-data-dir={d}/chromium-profile", "--window-size=1200,1800",
                    f"--screenshot={shot}", f"file://{html_path}"], capture_output=True, timeout=120)
    check(os.path.exists(shot) and os.path.getsize(shot) > 20000, f"screenshot {shot}")

# A corpus moved away since training: the report says so and is still written.
shutil.copytree(run_dir, f"{d}/moved")
cfg_text = open(f"{d}/moved/config.yaml").read().replace(corpus, f"{d}/gone.h5")
open(f"{d}/moved/config.yaml", "w").write(cfg_text)
p = run(["report", f"{d}/moved"])
moved = json.load(open(p.stdout.split()[1]))
check("gone.h5: corpus file does not exist" in moved["corpus"].get("unavailable", ""),
      f"a missing corpus is noted in the report ({moved['corpus']})")

# Bad inputs.
p = run(["report", f"{d}/nowhere"], expect=4)
check("nowhere: not a directory" in p.stderr, "missing run directory named")
os.makedirs(f"{d}/empty")
p = run(["report", f"{d}/empty"], expect=4)
check("not a tern run directory" in p.stderr, "a directory that is no run is named")
with open(f"{run_dir}/metrics.jsonl", "a") as f:
    f.write("{broken\n{\"step\": 31}\n")
p = run(["report", run_dir], expect=4)
check("metrics.jsonl:" in p.stderr and "not a JSON object" in p.stderr, f"corrupt metrics line named ({p.stderr.strip()})")
finish()
