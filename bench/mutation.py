"""`make mutation`: how many of mutmut's mutants of each module the tests catch.

Runs ``mutmut run`` (mutants of the modules ``[tool.mutmut]`` in pyproject.toml names, each
against the test files that cover it), then prints, per module, mutants caught (killed or
timed out), survivors shown to be equivalent (no test could catch them: the code does the
same), and the share caught of the rest. Every equivalent survivor is listed with its reason;
any other survivor is listed by name to look at with ``mutmut show NAME``.
Not part of ``make test``: a full run takes minutes on 2 cores.

An equivalent mutant is recognised by what it changes, not by its number (numbers move when
the code does): :data:`EQUIVALENT` names the function, the line as written and the line as
mutated; :func:`sql_case_only` recognises a change of case in SQL, which SQLite ignores.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = str(Path(sys.executable).parent / "mutmut")
CAUGHT = {"killed", "timeout"}
_NAME = re.compile(
    r"(?P<module>bulkleads\.[\w.]+?)\.x(?:ǁ(?P<cls>\w+)ǁ|_)(?P<func>\w+?)__mutmut_\d+"
)
_SQL = re.compile(
    r"\b(SELECT|INSERT|UPDATE|JOIN|WHERE|ORDER BY|GROUP BY|PRAGMA|ATTACH|DETACH|CREATE|"
    r"IS NULL|IS NOT NULL|LIMIT|FROM|AND|IN|CASE|WHEN|VALUES|SET)\b|\b[a-z]\.[a-z_]+\b|"
    r"\bcoalesce\("
)


@dataclass(frozen=True)
class Equivalent:
    """Mutants of ``function`` (``Class.method`` or ``function``) whose line containing
    ``was`` became a line matching ``became`` (a regular expression)."""

    function: str
    was: str
    became: str
    why: str


_FALSY = "None is as false as False"
EQUIVALENT: tuple[Equivalent, ...] = (
    # send/pacing.py
    Equivalent(
        "Pacer.__init__",
        "self._spacer: AsyncLimiter | None = None",
        r'= ""',
        "the first _spacing() replaces it: an empty spacer's rate 0 differs from any rate",
    ),
    Equivalent(
        "Pacer.__init__",
        "self._spacer_rate = 0.0",
        r"self\._spacer_rate = (None|1\.0)",
        "read only once a limiter exists, and building the first limiter sets it",
    ),
    Equivalent(
        "Pacer.__init__", 'float("-inf")', r'float\("-INF"\)', "float() reads inf in any case"
    ),
    Equivalent("Pacer.__init__", "self._warned = False", r"self\._warned = None", _FALSY),
    Equivalent("Pacer.observe", "contended = False", r"contended = None", _FALSY),
    Equivalent(
        "Pacer.__init__",
        "self._carried: list[float] = []",
        r"= None",
        "set at the first start, before fastest() can read it",
    ),
    Equivalent(
        "Pacer.__init__",
        "self.last_answer: float | None = None",
        r'= ""',
        "utilization() gets past it only with a start and nothing accepted: fastest() is 0",
    ),
    Equivalent(
        "Pacer.fastest",
        "if a > self.first_start - limit.window",
        r"if a >= self\.first_start",
        "an answer exactly a window before the first start frees its place at that start: "
        "counted or not, that slot is the first start",
    ),
    Equivalent(
        "Pacer.fastest",
        "max(0, limit.cap - len(carried))",
        r"max\(1, ",
        "the window guard lets the first request start only with a place free: fewer than "
        "cap earlier answers are ever in its window",
    ),
    Equivalent(
        "Pacer.utilization",
        "if self.first_start is None or self.last_answer is None",
        r"if self\.first_start is None and ",
        "either alone gives None too: no start, fastest() is 0; no answer, none accepted",
    ),
    Equivalent(
        "Pacer._spacing",
        "abs(rate - self._spacer_rate) > self._spacer_rate",
        r"\) >= self\._spacer_rate",
        "a new limiter at an unchanged rate, with the next start held one gap after the "
        "last: the same starts",
    ),
    Equivalent(
        "Pacer._window_has_room",
        "run_for >= _WHOLE_WINDOWS * limit.window",
        r"run_for > _WHOLE_WINDOWS",
        "differs only at the one instant exactly ten windows in; a turn of the loop later "
        "both free the same room",
    ),
    Equivalent(
        "Pacer._forget",
        "self._starts[0] <= horizon",
        r"self\._starts\[0\] < horizon",
        "a start a window and a half old counts in no window: dropped now or next time",
    ),
    Equivalent(
        "Pacer.observe",
        "500 <= status < 600",
        r"500 <= status (<= 600|< 601)",
        "no HTTP status is 600: answers are 100-599",
    ),
    Equivalent(
        "Pacer.observe",
        "elif self._factor < 1 and",
        r"elif self\._factor (<= 1|< 2) and",
        "at full pace a step is capped back to 1.0; only the last change's time moves, and "
        "every cut sets it again before it is read",
    ),
    Equivalent(
        "Pacer._track_others",
        "max(0.0, used - sure)",
        r"max\(1\.0, used - sure\)",
        "taken only when used - possible >= 1, and sure <= possible: used - sure >= 1 already",
    ),
    Equivalent(
        "Pacer._track_others",
        "if watched < limit.window else seen",
        r"if watched <= limit\.window",
        "at watched == window the scaled sample is seen * window / window = seen",
    ),
    Equivalent(
        "Pacer._track_others",
        "sample if sample >= self._others",
        r"sample if sample > self\._others",
        "at sample == others the sample and their mean are the same",
    ),
    # hubspot/crm_batch.py
    Equivalent(
        "CrmV3Target._key_of",
        "props.get(self._id_property) if self._id_property else None",
        r"if \(self\._id_property\) or True",
        "with no match property, props.get(None) is None as well: property names are text",
    ),
    # hubspot/limits.py
    Equivalent(
        "Limit.minimum_seconds",
        "if requests <= 0:",
        r"if requests <= 1:",
        "one request takes ceil(1 / cap) - 1 = 0 windows: the same 0.0 either way",
    ),
    Equivalent(
        "retry_after_seconds",
        "seconds <= MAX_PLAUSIBLE_WAIT * 1000",
        r"MAX_PLAUSIBLE_WAIT \* 1001",
        "a value of 300,000 to 300,300 is more than 300 s as seconds or as milliseconds: "
        "implausible either way",
    ),
    # jobstore/store.py
    Equivalent(
        "JobStore.__init__",
        "sqlite3.connect(path, isolation_level=None)",
        r"sqlite3\.connect\(path, \)",
        "every write runs inside the store's own BEGIN/COMMIT (Transaction): the sqlite3 "
        "module never opens a transaction of its own",
    ),
)
SQL_CASE = "SQLite reads keywords and names in any case (quoted values unchanged)"


def main() -> int:
    subprocess.run([MUTMUT, "run", "--max-children", "2"], cwd=ROOT, check=False)
    listed = subprocess.run(
        [MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in listed.splitlines():
        name, _, status = line.strip().partition(": ")
        match = _NAME.fullmatch(name)
        if not match:
            continue
        statuses[match["module"]][status.strip()] += 1
        if status.strip() == "survived":
            survivors[match["module"]].append(name)
    equivalent: dict[str, list[tuple[str, str]]] = defaultdict(list)
    alive: dict[str, list[str]] = defaultdict(list)
    for module, names in survivors.items():
        for name in names:
            why = equivalent_because(name, changed_lines(name))
            if why:
                equivalent[module].append((name, why))
            else:
                alive[module].append(name)
    print("module | mutants | caught | equivalent | share caught of the rest | alive | other")
    for module, counts in sorted(statuses.items()):
        total = sum(counts.values())
        caught = sum(counts[s] for s in CAUGHT)
        same = len(equivalent[module])
        other = total - caught - counts["survived"]
        share = caught / (total - same) if total > same else 1.0
        print(
            f"{module} | {total} | {caught} | {same} | {share:.0%} | {len(alive[module])} | {other}"
        )
    for module, names in sorted(alive.items()):
        if names:
            print(f"\nalive in {module} (mutmut show NAME): " + " ".join(names))
    for module, pairs in sorted(equivalent.items()):
        if not pairs:
            continue
        print(f"\nequivalent in {module}:")
        by_reason: dict[str, list[str]] = defaultdict(list)
        for name, why in pairs:
            by_reason[why].append(_function(name))
        for why, functions in by_reason.items():
            print(f"- {', '.join(sorted(set(functions)))} ({len(functions)}): {why}")
    return 0


def changed_lines(name: str) -> tuple[list[str], list[str]]:
    """The lines ``mutmut show`` gives as removed and added for one mutant."""
    shown = subprocess.run(
        [MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True
    ).stdout.splitlines()
    removed = [line[1:] for line in shown if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in shown if line.startswith("+") and not line.startswith("+++")]
    return removed, added


def equivalent_because(name: str, lines: tuple[list[str], list[str]]) -> str | None:
    """Why the mutant ``name`` that changed ``lines`` is equivalent, or None."""
    removed, added = lines
    if not removed or len(removed) != len(added):
        return None
    if all(sql_case_only(was, became) for was, became in zip(removed, added, strict=True)):
        return SQL_CASE
    function = _function(name)
    for rule in EQUIVALENT:
        if rule.function == function and any(
            rule.was in was and re.search(rule.became, became)
            for was, became in zip(removed, added, strict=True)
        ):
            return rule.why
    return None


def sql_case_only(was: str, became: str) -> bool:
    """True when ``became`` is ``was`` with letters of an SQL statement in another case, none
    of them inside a quoted value ('done' and 'DONE' are different values)."""
    if was == became or was.lower() != became.lower() or not _SQL.search(was):
        return False
    quoted = False
    for old, new in zip(was, became, strict=True):
        quoted ^= old == "'"
        if old != new and quoted:
            return False
    return True


def _function(name: str) -> str:
    match = _NAME.fullmatch(name)
    if not match:
        return name
    return f"{match['cls']}.{match['func']}" if match["cls"] else match["func"]


if __name__ == "__main__":
    sys.exit(main())
