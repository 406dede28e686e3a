#!/usr/bin/env bash
# Shallow fusion for domain adaptation with monolingual text, on the Bible: the translation model is trained without
# the epistles (Romans-Jude), the Spanish language model of bench/lm_fusion.sh on the whole target side of the
# training split (so it has read the Spanish epistles the translation model never saw translated); the weight is chosen
# on the valid epistles (Galatians, Colossians, Titus) and the test epistles (James, I Peter) are translated with and
# without it. Needs work/bible (scripts/run_bible.sh); ~12 min on 2 cores (the translation model trains 800 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
DOMAIN=work/bible_domain
RUN=${RUN:-runs/bible_no_epistles}
mkdir -p "$DOMAIN"
if [ ! -f "$DOMAIN/domain.h5" ]; then
  python3 - "$WORK" "$DOMAIN" <<'PY'
import sys
work, out = sys.argv[1:]
EPISTLES = {"Romans", "I Corinthians", "II Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
            "I Thessalonians", "II Thessalonians", "I Timothy", "II Timothy", "Titus", "Philemon", "Hebrews", "James",
            "I Peter", "II Peter", "I John", "II John", "III John", "Jude"}
for split, keep_epistles in (("train", False), ("valid", True), ("test", True)):
    refs = open(f"{work}/{split}.ref", encoding="utf-8").read().splitlines()
    keep = [(r.rsplit(" ", 1)[0] in EPISTLES) == keep_epistles for r in refs]
    for side in ("en", "es"):
        lines = open(f"{work}/{split}.{side}", encoding="utf-8").read().splitlines()
        assert len(lines) == len(refs), (split, side)
        with open(f"{out}/{split}.{side}", "w", encoding="utf-8") as f:
            f.writelines(l + "\n" for l, k in zip(lines, keep) if k)
    print(f"{split}: {sum(keep)} of {len(refs)} verses ({'epistles' if keep_epistles else 'without the epistles'})")
PY
  "$TERN" prepare --train-src "$DOMAIN/train.en" --train-tgt "$DOMAIN/train.es" --valid-src "$DOMAIN/valid.en" \
    --valid-tgt "$DOMAIN/valid.es" --test-src "$DOMAIN/test.en" --test-tgt "$DOMAIN/test.es" \
    --vocab-from "$WORK/bible.h5" --max-tokens 100 --long-policy drop --out "$DOMAIN/domain.h5"
fi
if [ ! -f "$RUN/best.tern" ]; then
  "$TERN" train configs/bible.yaml --set data.corpus="$DOMAIN/domain.h5" --set train.run_dir="$RUN"
fi
DATA="$DOMAIN/domain.h5" REFS="$DOMAIN" bench/lm_fusion.sh "$RUN/best.tern"
