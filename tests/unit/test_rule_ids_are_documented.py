"""Every rule id the code and the tests use (T-4 in a comment, test_T4_… in a name, E5 beside a
message, Q17 for a FAQ answer) is stated in docs/rules.md, so an id resolves inside the
repository; and docs/rules.md states no id that nothing uses but the seed's own lists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [path for folder in ("lifecycle", "api", "workers", "tests", "benchmarks")
           for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".j2", ".html", ".md")]
RULE = re.compile(r"\b([ASTPBRMKQ])-(\d+)\b|\b(E[1-6])\b|\btest_([ASTPBRMKQ])(\d+)_|\b(Q\d{1,2})\b")


def used_ids() -> set[str]:
    found = set()
    for path in SOURCES:
        for match in RULE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            letter, number, error, test_letter, test_number, faq = match.groups()
            if letter:
                found.add(f"{letter}-{number}")
            elif error:
                found.add(error)
            elif test_letter == "Q" and int(test_number) > 2:  # test_Q12_ names the FAQ answer, not a rule
                found.add(f"Q{test_number}")
            elif test_letter:
                found.add(f"{test_letter}-{test_number}")
            else:
                found.add(faq)
    return found


def stated_ids() -> set[str]:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    stated = set(re.findall(r"\*\*([ASTPBRMKQ]-\d+|E[1-6])\b", text))
    faq = text[text.index("## The seed's FAQ numbers"):]
    for first, last in re.findall(r"\*\*Q(\d+)(?:–Q(\d+))?", faq):
        stated |= {f"Q{n}" for n in range(int(first), int(last or first) + 1)}
    return stated


def test_every_rule_id_in_the_code_and_the_tests_is_stated_in_docs_rules_md() -> None:
    missing = sorted(used_ids() - stated_ids())
    assert not missing, f"rule ids used but not stated in docs/rules.md: {missing}"


def test_the_rules_file_states_the_seed_s_whole_lists() -> None:
    stated = stated_ids()
    for letter, count in {"A": 4, "S": 5, "T": 8, "P": 4, "B": 3, "R": 3, "M": 4, "K": 1, "Q": 2}.items():
        assert {f"{letter}-{n}" for n in range(1, count + 1)} <= stated, letter
    assert {f"E{n}" for n in range(1, 7)} <= stated
