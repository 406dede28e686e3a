#!/usr/bin/env python3
"""English->Spanish Bible corpus from Debian's SWORD modules (read with diatheke), aligned by verse reference.

Writes {train,valid,test}.{en,es} and .ref (verse references) under OUT. Whole books are held out for valid and
test so that scores are honest. Markup such as Strong's numbers (<G5547>) is removed and spacing normalised.
"""
import argparse
import collections
import re
import subprocess
import sys

VALID_BOOKS = {"Ruth", "Jonah", "Galatians", "Colossians", "Titus"}
TEST_BOOKS = {"James", "I Peter", "Lamentations", "Nahum", "Habakkuk"}
REF = re.compile(r"^\s*((?:[1-3] |I{1,3} )?[A-Za-z][A-Za-z ]*?) (\d+):(\d+): ?(.*)$")
MARKUP = re.compile(r"<[^>]*>")


def read_module(module):
    try:
        out = subprocess.run(["diatheke", "-b", module, "-f", "plain", "-k", "Gen 1:1-Rev 22:21"],
                             check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("error: diatheke not found; install Debian's diatheke and sword-text-* packages (scripts/setup.sh)")
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: diatheke failed for module {module}: {e.stderr.strip()}")
    verses = collections.OrderedDict()
    for line in out.splitlines():
        m = REF.match(line)
        if m:  # headings and blank lines between verses are not verse text
            book, chap, verse, text = m.groups()
            verses[(book.strip(), int(chap), int(verse))] = text
    if not verses:
        sys.exit(f"error: module {module} produced no verses; is sword-text-* installed?")
    return verses


def clean(text):
    return " ".join(MARKUP.sub(" ", text).split())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--src-module", default="engKJV2006eb")
    ap.add_argument("--tgt-module", default="spaRV1909eb")
    args = ap.parse_args()
    src, tgt = read_module(args.src_module), read_module(args.tgt_module)
    files = {}
    counts = collections.Counter()
    import os
    os.makedirs(args.out, exist_ok=True)
    for split in ("train", "valid", "test"):
        files[split] = [open(os.path.join(args.out, f"{split}.{ext}"), "w", encoding="utf-8") for ext in ("en", "es", "ref")]
    for key, en in src.items():
        if key not in tgt:
            counts["missing_in_target"] += 1
            continue
        en, es = clean(en), clean(tgt[key])
        if not en or not es:
            counts["empty"] += 1
            continue
        split = "valid" if key[0] in VALID_BOOKS else "test" if key[0] in TEST_BOOKS else "train"
        f_en, f_es, f_ref = files[split]
        f_en.write(en + "\n")
        f_es.write(es + "\n")
        f_ref.write(f"{key[0]} {key[1]}:{key[2]}\n")
        counts[split] += 1
    for fs in files.values():
        for f in fs:
            f.close()
    aligned = len(set(src) & set(tgt))
    print(f"bible corpus: {len(src)} {args.src_module} verses, {len(tgt)} {args.tgt_module} verses, {aligned} aligned; "
          f"train {counts['train']}, valid {counts['valid']}, test {counts['test']}, "
          f"dropped empty {counts['empty']}, unaligned {counts['missing_in_target']}")


if __name__ == "__main__":
    main()
