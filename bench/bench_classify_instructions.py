"""Instructions per classification, counted by callgrind: a figure that does
not depend on how loaded the machine is (wall-clock rates on a shared VM vary
up to 2x from minute to minute).

    python bench/bench_classify_instructions.py [--passes 4]

Runs the same script under ``valgrind --tool=callgrind`` twice: set-up plus
one warm-up pass over the dev texts, and set-up plus warm-up plus ``--passes``
more passes; the difference divided by the extra classifications is the cost
of one.  ``PYTHONHASHSEED`` is fixed so both runs hash alike.  Takes a minute
or two (valgrind runs Python ~50x slower).  Needs valgrind (Debian package
``valgrind``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "eval" / "complaints_dev.jsonl"

WORKLOAD = """
import json, sys
sys.path.insert(0, {root!r})
from complaint_stream.domain.classification import Classifier, load_rules
rows = [json.loads(line) for line in open({data!r}, encoding="utf-8") if line.strip()]
classifier = Classifier(load_rules())
items = [(r["text"], r["channel"]) for r in rows]
for _ in range(1 + int(sys.argv[1])):
    for text, channel in items:
        classifier.classify(text, channel)
"""


def collected(script: Path, passes: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, str(script), str(passes)],
                         capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected : (\d+)", run.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEV))
    parser.add_argument("--passes", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with open(args.data, encoding="utf-8") as fh:
        texts = sum(1 for line in fh if line.strip())
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"classify-workload-{os.getpid()}.py"
    script.write_text(WORKLOAD.format(root=str(ROOT), data=str(Path(args.data).resolve())), encoding="utf-8")
    try:
        base = collected(script, 0)
        full = collected(script, args.passes)
    finally:
        script.unlink(missing_ok=True)
    per = (full - base) / (args.passes * texts)
    print(json.dumps({"instructions_per_classification": round(per), "texts": texts, "passes": args.passes,
                      "rules": "alone"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
