"""`make mutation`: how many of mutmut's mutants of each module the tests catch.

Runs ``mutmut run`` (mutants of the modules ``[tool.mutmut]`` in pyproject.toml names, each
against the test files that cover it), then prints, per module, mutants caught (killed or
timed out) over all mutants, and the survivors' names to look at with ``mutmut show NAME``.
Not part of ``make test``: a full run takes many minutes on 2 cores.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = str(Path(sys.executable).parent / "mutmut")
CAUGHT = {"killed", "timeout"}


def main() -> int:
    subprocess.run([MUTMUT, "run", "--max-children", "2"], cwd=ROOT, check=False)
    listed = subprocess.run(
        [MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in listed.splitlines():
        match = re.match(r"\s*(bulkleads\.[\w.]+?)\.x\w*__mutmut_\d+: (\w[\w ]*)", line)
        if not match:
            continue
        module, status = match.group(1), match.group(2).strip()
        by_module[module][status] += 1
        if status == "survived":
            survivors[module].append(line.split(":")[0].strip())
    print("module | mutants | caught | share caught | survived | other")
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        caught = sum(counts[s] for s in CAUGHT)
        other = total - caught - counts["survived"]
        print(
            f"{module} | {total} | {caught} | {caught / total:.0%} | {counts['survived']} | {other}"
        )
    for module, names in sorted(survivors.items()):
        print(f"\nsurvivors in {module}: " + " ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
