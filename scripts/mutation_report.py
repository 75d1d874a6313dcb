"""The mutation score of each safety-critical module, from the results mutmut left in `mutants/`.

`make mutation` runs mutmut and then this; `python -m scripts.mutation_report` alone prints the table of the
last run. The score is killed / (killed + survived + no tests): a mutant no test reaches counts against the
module, a timeout counts as killed (the mutant made the code hang: a test noticed), and a mutant not
checked yet (a run restricted to other modules or functions) is left out and counted in `unchecked`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The targets: triage and the pipeline 90 %, the other safety-critical modules 80 %.
TARGETS = {
    "safety/engine.py": 90,
    "safety/rules.py": 90,
    "safety/context.py": 90,
    "bot/conversation/pipeline.py": 90,
}
DEFAULT_TARGET = 80
# mutmut's exit codes (mutmut/stats.py): what each means for the score.
KILLED = {1, 3, 24, -24, 36, 152, 255}  # a test failed, pytest broke, or the mutant timed out
SURVIVED = {0}
NO_TESTS = {5, 33}
UNCHECKED = {None, 2}  # never run, or interrupted


def configured_modules(root: Path) -> list[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["source_paths"])


def tally(meta: Path) -> Counter[str]:
    """Mutants of one module by outcome."""
    counts: Counter[str] = Counter()
    for code in json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"].values():
        if code in KILLED:
            counts["killed"] += 1
        elif code in SURVIVED:
            counts["survived"] += 1
        elif code in NO_TESTS:
            counts["no tests"] += 1
        elif code in UNCHECKED:
            counts["unchecked"] += 1
        else:  # suspicious, segfault, skipped: a kill mutmut is not sure of, shown apart
            counts["other"] += 1
    return counts


def score(counts: Counter[str]) -> float | None:
    checked = counts["killed"] + counts["survived"] + counts["no tests"]
    return 100.0 * counts["killed"] / checked if checked else None


def report(root: Path) -> tuple[list[str], bool]:
    """The table's lines, and whether every fully checked module meets its target."""
    columns = ("killed", "survived", "no tests", "other", "unchecked")
    lines = [f"{'module':34} {'mutants':>7} " + " ".join(f"{c:>9}" for c in columns) + "   score  target"]
    all_met = True
    for module in configured_modules(root):
        meta = root / "mutants" / f"{module}.meta"
        if not meta.is_file():
            lines.append(f"{module:34} not mutated yet")
            continue
        counts = tally(meta)
        value = score(counts)
        target = TARGETS.get(module, DEFAULT_TARGET)
        shown = "    -" if value is None else f"{value:5.1f}%"
        met = value is not None and value >= target
        if counts["unchecked"] == 0:
            all_met = all_met and met
        flag = "" if counts["unchecked"] else ("  ok" if met else "  MISSED")
        lines.append(
            f"{module:34} {sum(counts.values()):7} "
            + " ".join(f"{counts[c]:9}" for c in columns)
            + f"  {shown}  {target:4}%{flag}"
        )
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a fully checked module misses")
    args = parser.parse_args(argv)
    lines, all_met = report(ROOT)
    print("\n".join(lines))
    return 1 if args.check and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
