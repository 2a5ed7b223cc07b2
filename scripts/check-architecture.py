#!/usr/bin/env python3
"""Check the shape ../shared/ARCHITECTURE.md draws (issue 29): which part of the library may
reach which, and how long a source file may grow. `make lint` runs it; standard library only.

    python3 scripts/check-architecture.py
    python3 scripts/check-architecture.py --self-test   # the checker finds what it should

A part is a top-level module of shared/src (`lanes/`, `config.rs` with `config/`, ...), with
`domain::text` counted apart as the floor it is. A reference is `crate::<part>` in a non-test,
non-comment line of shared/src, or `ferry::<part>` in cli/src. Rules ("never" in
ARCHITECTURE.md):

- domain never reaches adapters, ports, handlers, lanes, trigger, notify or config;
- ids, error and text reach only the floor (text, budget) below them;
- config never reaches trigger or handlers; lanes never adapters, handlers, trigger or notify;
- trigger and notify never adapters, handlers, lanes or each other;
- handlers never adapters; ports never adapters or handlers; fakes never adapters;
- the CLI never reaches handlers: it calls the use cases in lanes/;
- no non-test source file of shared/src is over 600 lines.

KNOWN lists exceptions, each with why; a new one fails, and one that no longer occurs must be
taken off the list (so the list only shrinks). It is empty: the two that remained (error.rs's
ConfigError from config.rs, config.rs parsing routes with trigger/) moved down. Only direct
references are seen, not a part reaching another through a third.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
ADAPTERS = {"aws"}
NEVER: dict[str, set[str]] = {
    "domain": ADAPTERS | {"ports", "handlers", "lanes", "trigger", "notify", "config", "fakes",
                          "runtime"},
    "text": {"*"},
    "ids": {"*"},
    "error": {"*"},
    "config": {"trigger", "handlers"},
    "lanes": ADAPTERS | {"handlers", "trigger", "notify", "fakes", "runtime"},
    "trigger": ADAPTERS | {"handlers", "notify", "lanes", "fakes", "runtime"},
    "notify": ADAPTERS | {"handlers", "trigger", "lanes", "fakes", "runtime"},
    "handlers": ADAPTERS | {"fakes"},
    "ports": ADAPTERS | {"handlers", "fakes", "runtime"},
    "fakes": ADAPTERS,
    "cli": {"handlers"},
}
# What the floor may use: "*" above means everything but these (and the part itself).
FLOOR = {"text", "budget"}
# Today's exceptions: (from, to) -> why it is still there.
KNOWN: dict[tuple[str, str], str] = {}
REFERENCE = re.compile(r"\b(crate|ferry)::(\w+)(?:::(\w+))?")
TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*mod tests\s*\{")


def part_of(path: Path) -> str:
    """The part a file of shared/src belongs to (`domain/text.rs` is `text`)."""
    parts = path.parts
    if parts[:2] == ("domain", "text.rs"):
        return "text"
    return parts[0].removesuffix(".rs")


def references(text: str, prefix: str) -> set[tuple[str, int]]:
    """(part, line) for each `<prefix>::part` outside comments and the file's test module."""
    found = set()
    test_module = TEST_MODULE.search(text)
    code = text[:test_module.start()] if test_module else text
    for number, line in enumerate(code.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        for crate, part, child in REFERENCE.findall(stripped):
            if crate != prefix:
                continue
            yield_part = "text" if (part, child) == ("domain", "text") else part
            found.add((yield_part, number))
    return found


def forbidden(source: str, target: str) -> bool:
    never = NEVER.get(source, set())
    if "*" in never:
        return target not in FLOOR and target != source
    return target in never


def check(files: dict[str, tuple[str, str]],
          known: dict[tuple[str, str], str] | None = None) -> list[str]:
    """`files`: path -> (part, text); the prefix is `ferry` for the CLI, `crate` otherwise.
    `known`: the exceptions (KNOWN)."""
    known = KNOWN if known is None else known
    problems = []
    seen = set()
    for path, (part, text) in sorted(files.items()):
        prefix = "ferry" if part == "cli" else "crate"
        for target, line in sorted(references(text, prefix)):
            if target == part or not forbidden(part, target):
                continue
            seen.add((part, target))
            if (part, target) not in known:
                problems.append(f"{path}:{line}: {part} reaches {target}, which it never may "
                                "(../shared/ARCHITECTURE.md)")
        if part != "cli" and len(text.splitlines()) > MAX_LINES:
            problems.append(f"{path}: {len(text.splitlines())} lines, over {MAX_LINES}: split "
                            "it by concern")
    for (source, target), why in sorted(known.items()):
        if (source, target) not in seen:
            problems.append(f"KNOWN ({source} -> {target}) no longer occurs: take it off the list "
                            f"({why})")
    return problems


def read() -> dict[str, tuple[str, str]]:
    files = {}
    src = ROOT / "shared" / "src"
    for path in src.rglob("*.rs"):
        relative = path.relative_to(src)
        if path.name == "tests.rs" or "tests" in relative.parts[:-1]:
            continue
        files[f"shared/src/{relative}"] = (part_of(relative), path.read_text())
    for path in (ROOT / "cli" / "src").rglob("*.rs"):
        files[str(path.relative_to(ROOT))] = ("cli", path.read_text())
    return files


def self_test() -> int:
    """One planted mistake of each kind, and the known exceptions present: each must be found."""
    files = {
        "shared/src/lanes/a.rs": ("lanes", "use crate::notify::report::Outcome;\n"
                                           "// crate::trigger in a comment is fine\n"),
        "shared/src/domain/text.rs": ("text", "use crate::budget::x;\nuse crate::ids::Y;\n"),
        "cli/src/a.rs": ("cli", "use ferry::handlers::submit;\nuse ferry::lanes::intake;\n"),
        "shared/src/domain/big.rs": ("domain", "\n" * (MAX_LINES + 1)),
        "shared/src/error.rs": ("error", "use crate::config::ConfigError; crate::domain::text::x\n"),
        "shared/src/config.rs": ("config", "use crate::trigger::routes::Routes;\n"),
        "shared/src/trigger/b.rs": ("trigger", "#[cfg(test)]\nmod tests {\n"
                                               "use crate::lanes::x;\n}\n"),
    }
    expected = ["shared/src/lanes/a.rs:1: lanes reaches notify",
                "shared/src/domain/text.rs:2: text reaches ids",
                "cli/src/a.rs:1: cli reaches handlers",
                "shared/src/domain/big.rs: 601 lines",
                "shared/src/error.rs:1: error reaches config",
                "KNOWN (handlers -> aws) no longer occurs"]
    known = {("config", "trigger"): "planted", ("handlers", "aws"): "planted, never occurs"}
    problems = check(files, known)
    missed = [e for e in expected if not any(p.startswith(e) for p in problems)]
    if missed or len(problems) != len(expected):
        print(f"check-architecture self-test: missed {missed}; found {problems}")
        return 1
    print(f"check-architecture self-test: {len(expected)} planted mistakes found")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    files = read()
    problems = check(files)
    for problem in problems:
        print(f"check-architecture: {problem}")
    if not problems:
        print(f"check-architecture: {len(files)} files keep ARCHITECTURE.md's rules "
              f"({len(KNOWN)} known exceptions) and are at most {MAX_LINES} lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
