#!/usr/bin/env python3
"""Check the links of Ferry's Markdown documentation (`make lint` runs it; standard library only).

    python3 scripts/check-docs.py              check the repository this script is in
    python3 scripts/check-docs.py --self-test  check the checker, on a temporary directory

Checked files: README.md, docs/*.md, bench/README.md and emulator/README.md. For every link
(inline `[text](target)`, images, reference definitions `[label]: target` and `<https://...>`
autolinks; code spans and fenced code blocks are skipped):

- a relative link must name a file or directory that exists in the repository (a leading `/`
  is the repository root, as on GitHub);
- a `#anchor`, alone or after a Markdown file, must be the GitHub slug of a heading of the target
  file (or an `id`/`name` of an HTML element in it); on other files only GitHub's line anchors
  (`#L10`, `#L10-L20`) are accepted;
- an http(s) link must be well formed (nothing is fetched).

README.md must also be at most 260 lines, and its code map (the block that opens with
`shared/src/`) must name every module of `shared/src` (`budget.rs`, `domain/`, ...) and, on
each folder's line, every file directly in that folder (tests and `mod.rs` aside): a file added
without a home in the map fails.

The functions cannot drift either: `template.yaml` must deploy exactly the binaries of
`functions/` (each `AWS::Serverless::Function`'s `Binary: ferry-<dir>`), and wherever a document
counts them in words ("the eight functions") the word must be that count. Problems are printed as
`file:line: link: problem` and make the exit status 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

README_MAX_LINES = 260
DOC_GLOBS = ("README.md", "docs/*.md", "bench/README.md", "emulator/README.md")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"""<[a-zA-Z][^>]*?\s(?:id|name)\s*=\s*["']([^"']+)["']""")
REFERENCE_DEF = re.compile(r"^ {0,3}\[([^\]]+)\]:[ \t]*(<[^>]*>|\S+)")
AUTOLINK = re.compile(r"<((?:https?|mailto):[^\s<>]*)>", re.IGNORECASE)
# `[text](` or `![alt](`: text may hold one level of nested brackets (`[a [b] c]`).
LINK_OPEN = re.compile(r"!?\[((?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]\(")
LINE_ANCHOR = re.compile(r"^L\d+(?:-L\d+)?$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


# --- GitHub's heading slugs -----------------------------------------------------------------


def heading_text(markdown: str) -> str:
    """The text GitHub renders for a heading's Markdown: links and images become their text,
    code spans lose their backticks, HTML tags and a closing `#` sequence go."""
    text = re.sub(r"[ \t]+#+[ \t]*$", "", markdown)  # closing sequence: `## Title ##`
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(`+)(.*?)\1", r"\2", text)
    return text.strip()


def slug(text: str) -> str:
    """GitHub's slug of a heading's rendered text (github-slugger): lowercase, then drop every
    character that is not a letter, mark, digit, connector punctuation (`_`), space or hyphen,
    then each space becomes a hyphen."""
    kept = []
    for ch in text.lower():
        category = unicodedata.category(ch)
        if ch in " -" or category[0] in "LMN" or category == "Pc":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


class Slugger:
    """Slugs of one file's headings in order: a repeated slug gets -1, -2, ... as on GitHub."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def add(self, text: str) -> str:
        base = slug(text)
        result = base
        while result in self.seen:
            self.seen[base] += 1
            result = f"{base}-{self.seen[base]}"
        self.seen[result] = 0
        return result


# --- Reading Markdown -----------------------------------------------------------------------


def prose_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks, with code spans blanked."""
    result = []
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and line.strip() == match.group(1):
                fence = None
            continue
        result.append((number, blank_code_spans(line)))
    return result


def blank_code_spans(line: str) -> str:
    """The line with the content of each code span replaced by spaces (links in code are text)."""
    return re.sub(r"(`+)(.+?)\1", lambda m: " " * len(m.group(0)), line)


def anchors_of(text: str) -> set[str]:
    """Every anchor a Markdown file offers: its headings' slugs and HTML id/name attributes."""
    lines = text.splitlines()
    slugger = Slugger()
    anchors: set[str] = set()
    previous: tuple[int, str] | None = None
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, previous = match.group(1), None
            continue
        if fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and line.strip() == match.group(1):
                fence = None
            continue
        anchors.update(HTML_ANCHOR.findall(line))
        atx = ATX_HEADING.match(line)
        if atx:
            anchors.add(slugger.add(heading_text(atx.group(2) or "")))
            previous = None
            continue
        underline = SETEXT_UNDERLINE.match(line)
        if underline and previous is not None and previous[0] == number - 1:
            anchors.add(slugger.add(heading_text(previous[1])))
            previous = None
            continue
        stripped = line.strip()
        is_paragraph_text = bool(stripped) and not stripped.startswith(("|", ">", "-", "*", "+", "<")) \
            and not re.match(r"^\d+[.)]\s", stripped) and not line.startswith(("    ", "\t"))
        previous = (number, line) if is_paragraph_text else None
    return anchors


def link_destination(line: str, start: int) -> str | None:
    """The destination of an inline link whose `(` is just before `start`: balanced
    parentheses, `<...>` form, an optional title after whitespace."""
    rest = line[start:].lstrip()
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end > 0 else None
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "\\":
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return rest[:i]
            depth -= 1
        elif ch in " \t" and depth == 0:
            return rest[:i]  # a title follows
    return None  # not closed on this line: not a link


def links_of(text: str) -> list[tuple[int, str]]:
    """(line number, destination) of every link in a Markdown file."""
    found = []
    for number, line in prose_lines(text.splitlines()):
        definition = REFERENCE_DEF.match(line)
        if definition and not definition.group(1).startswith("^"):
            found.append((number, definition.group(2).strip("<>")))
            continue
        for match in LINK_OPEN.finditer(line):
            destination = link_destination(line, match.end())
            if destination is not None:
                found.append((number, destination))
        for match in AUTOLINK.finditer(line):
            found.append((number, match.group(1)))
    return found


# --- Checking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    link: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.link}: {self.problem}"


def check_web_link(link: str) -> str | None:
    try:
        parts = urlsplit(link)
        port = parts.port  # raises ValueError when malformed
    except ValueError as error:
        return f"malformed URL ({error})"
    del port
    if any(ch.isspace() for ch in link):
        return "malformed URL (whitespace)"
    if parts.scheme.lower() == "mailto":
        return None if "@" in parts.path else "malformed mailto: link"
    if not parts.hostname or not HOSTNAME.match(parts.hostname):
        return "malformed URL (no valid host name)"
    return None


class Checker:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.anchor_cache: dict[Path, set[str]] = {}

    def anchors(self, path: Path) -> set[str]:
        if path not in self.anchor_cache:
            self.anchor_cache[path] = anchors_of(path.read_text(encoding="utf-8"))
        return self.anchor_cache[path]

    def check_link(self, source: Path, link: str) -> str | None:
        if not link:
            return "empty link"
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", link)
        if scheme:
            if scheme.group(1).lower() in ("http", "https", "mailto"):
                return check_web_link(link)
            return f"unsupported scheme {scheme.group(1)}:"
        if link.startswith("//"):
            return "protocol-relative URL: write https://"
        path_part, _, anchor = link.partition("#")
        path_part = path_part.split("?", 1)[0]
        if path_part:
            base = self.root if path_part.startswith("/") else source.parent
            target = (base / unquote(path_part.lstrip("/"))).resolve()
            if target != self.root and self.root not in target.parents:
                return "points outside the repository"
            if not target.exists():
                return f"no such file or directory: {target.relative_to(self.root)}"
        else:
            target = source
        if "#" not in link:
            return None
        anchor = unquote(anchor)
        if not anchor:
            return "empty anchor"
        if target.is_dir():
            return "anchor on a directory"
        if target.suffix.lower() not in (".md", ".markdown"):
            return None if LINE_ANCHOR.match(anchor) else f"anchor #{anchor} on a file that has no headings"
        if anchor not in self.anchors(target):
            name = target.relative_to(self.root)
            return f"no heading with anchor #{anchor} in {name}"
        return None

    def check_file(self, path: Path) -> list[Problem]:
        problems = []
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(self.root))
        for line, link in links_of(text):
            problem = self.check_link(path, link)
            if problem:
                problems.append(Problem(name, line, link, problem))
        problems.extend(function_count_problems(self.root, name, text))
        if name == "README.md":
            problems.extend(code_map_problems(self.root, text))
            count = len(text.splitlines())
            if count > README_MAX_LINES:
                problems.append(Problem(name, count, "-", f"README.md has {count} lines, at most {README_MAX_LINES}"))
        return problems


FOLDER_LINE = re.compile(r"^  (\w+)/\s")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve")
FUNCTIONS_COUNTED = re.compile(rf"\b({'|'.join(NUMBER_WORDS)})\s+functions\b", re.IGNORECASE)
TEMPLATE_BINARY = re.compile(r"^\s+Binary:\s*(\S+)\s*$", re.MULTILINE)


def deployed_functions(root: Path) -> tuple[list[str], list[str]] | None:
    """The binaries template.yaml deploys and those functions/ holds (`ferry-<dir>`), or None
    when the tree has neither (the self-test's tree without them)."""
    template = root / "template.yaml"
    functions = root / "functions"
    if not template.is_file() or not functions.is_dir():
        return None
    text = template.read_text(encoding="utf-8")
    deployed = sorted(TEMPLATE_BINARY.findall(text))
    if len(deployed) != text.count("Type: AWS::Serverless::Function"):
        deployed.append("(a function with no Metadata.Binary)")
    built = sorted(f"ferry-{d.name}" for d in functions.iterdir() if (d / "Cargo.toml").is_file())
    return deployed, built


def function_count_problems(root: Path, name: str, text: str) -> list[Problem]:
    """The template and functions/ disagreeing (reported once, on README.md), and every
    "<number> functions" in `text` that is not the number the template deploys."""
    found = deployed_functions(root)
    if found is None:
        return []
    deployed, built = found
    problems = []
    if name == "README.md" and deployed != built:
        problems.append(Problem("template.yaml", 1, "-",
                                f"deploys {deployed}, but functions/ builds {built}"))
    want = NUMBER_WORDS[len(deployed)] if len(deployed) < len(NUMBER_WORDS) else None
    for line, prose in prose_lines(text.splitlines()):
        for match in FUNCTIONS_COUNTED.finditer(blank_code_spans(prose)):
            if match.group(1).lower() != want:
                problems.append(Problem(name, line, "-",
                                        f"says {match.group(0)!r}: template.yaml deploys "
                                        f"{len(deployed)} ({', '.join(deployed)})"))
    return problems


def code_map_problems(root: Path, readme: str) -> list[Problem]:
    """Modules of shared/src the README's code map leaves out (nothing when there is no map or
    no shared/src, as in the self-test's tree without one)."""
    src = root / "shared" / "src"
    lines = readme.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("shared/src/")), None)
    if start is None or not src.is_dir():
        return []
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("```")), len(lines))
    block = lines[start:end]
    text = "\n".join(block)
    problems = []
    modules = sorted({p.stem if p.suffix == ".rs" else p.name for p in src.iterdir()
                      if p.suffix == ".rs" or p.is_dir()})
    for module in modules:
        if not re.search(rf"(?<![\w/.]){re.escape(module)}(\.rs\b|/)", text):
            problems.append(Problem("README.md", start + 1, "-",
                                    f"code map: shared/src/{module} is not named"))
    for offset, line in enumerate(block):
        folder = FOLDER_LINE.match(line)
        if not folder or not (src / folder.group(1)).is_dir():
            continue
        for file in sorted((src / folder.group(1)).glob("*.rs")):
            if file.name in ("mod.rs", "tests.rs") or re.search(
                    rf"(?<![\w/]){re.escape(file.name)}", line):
                continue
            problems.append(Problem("README.md", start + offset + 1, "-",
                                    f"code map: {folder.group(1)}/{file.name} is not named on "
                                    f"the {folder.group(1)}/ line"))
    return problems


def documents(root: Path) -> list[Path]:
    paths: list[Path] = []
    for pattern in DOC_GLOBS:
        paths.extend(sorted(p for p in root.glob(pattern) if p.is_file()))
    return paths


def check(root: Path) -> tuple[list[Problem], int, int]:
    """Every problem in root's documentation, the number of files and of links checked."""
    checker = Checker(root)
    files = documents(checker.root)
    problems: list[Problem] = []
    links = 0
    for path in files:
        links += len(links_of(path.read_text(encoding="utf-8")))
        problems.extend(checker.check_file(path))
    return problems, len(files), links


# --- Self-test ------------------------------------------------------------------------------


def self_test() -> int:
    failures: list[str] = []

    def expect(what: str, got: object, want: object) -> None:
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    slugs = {
        "Job spec (version 1)": "job-spec-version-1",
        "Routes (`FERRY_ROUTES`)": "routes-ferry_routes",
        "Report JSON schema (`ferry.completion-report/1`)": "report-json-schema-ferrycompletion-report1",
        "s3-trigger: uploads to jobs": "s3-trigger-uploads-to-jobs",
        "Execution names, redelivery and partial failures": "execution-names-redelivery-and-partial-failures",
        "Deploy (AWS SAM)": "deploy-aws-sam",
        "What's new?  Two  spaces": "whats-new--two--spaces",
        "Ünïcödé Café 2.0": "ünïcödé-café-20",
        "Performance ✅ & cost": "performance---cost",
        "[Linked](docs/x.md) heading": "linked-heading",
        "Closing hashes ##": "closing-hashes",
    }
    for text, want in slugs.items():
        expect(f"slug({text!r})", slug(heading_text(text)), want)

    slugger = Slugger()
    expect("duplicates", [slugger.add(t) for t in ["Notes", "Notes", "Notes", "Notes 1"]],
           ["notes", "notes-1", "notes-2", "notes-1-1"])

    expect("links found", links_of(
        "A [link](a.md#x) and ![img](i.png \"title\") and `[code](no.md)` and <https://e.org/p>.\n"
        "```\n[fenced](no.md)\n```\n"
        "[ref]: b.md\n"
        "A [nested [bracket] text](c_(d).md) [not a link] (here).\n"),
        [(1, "a.md#x"), (1, "i.png"), (1, "https://e.org/p"), (5, "b.md"), (6, "c_(d).md")])

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "docs").mkdir()
        (root / "bench").mkdir()
        (root / "src").mkdir()
        (root / "src" / "lib.rs").write_text("fn main() {}\n")
        (root / "docs" / "guide.md").write_text(
            "# Guide\n\n## Routes (`FERRY_ROUTES`)\n\n## Notes\n\n## Notes\n\nSetext title\n------------\n\n"
            "```\n# not a heading\n```\n<a id=\"custom\"></a>\n"
            "Back to [the top](../README.md#project) and [here](#notes-1).\n")
        good = ("# Project\n\n"
                "[guide](docs/guide.md) [routes](docs/guide.md#routes-ferry_routes) [dup](docs/guide.md#notes-1)\n"
                "[setext](docs/guide.md#setext-title) [html](docs/guide.md#custom) [dir](src/)\n"
                "[code line](src/lib.rs#L1) [root](/docs/guide.md) [self](#project)\n"
                "[web](https://docs.aws.amazon.com/fsx/latest/APIReference/Welcome.html) <mailto:a@example.com>\n")
        (root / "README.md").write_text(good)
        problems, files, links = check(root)
        expect("a good tree has no problems", [str(p) for p in problems], [])
        expect("files checked", files, 2)
        expect("links checked", links, 13)

        (root / "README.md").write_text(good + (
            "[missing file](docs/missing.md)\n"
            "[missing anchor](docs/guide.md#no-such-heading)\n"
            "[fenced heading](docs/guide.md#not-a-heading)\n"
            "[third notes](docs/guide.md#notes-2)\n"
            "[bad web](https://bad..host/)\n"
            "[no host](https:///path)\n"
            "[outside](../../etc/passwd)\n"
            "[anchor on code](src/lib.rs#main)\n"
            "[self anchor](#nowhere)\n"))
        (root / "bench" / "README.md").write_text("[up](../docs/guide.md#guide) [broken](../nope.md)\n")
        problems, _, _ = check(root)
        expect("broken links found", [(p.file, p.line, p.link) for p in problems], [
            ("README.md", 7, "docs/missing.md"),
            ("README.md", 8, "docs/guide.md#no-such-heading"),
            ("README.md", 9, "docs/guide.md#not-a-heading"),
            ("README.md", 10, "docs/guide.md#notes-2"),
            ("README.md", 11, "https://bad..host/"),
            ("README.md", 12, "https:///path"),
            ("README.md", 13, "../../etc/passwd"),
            ("README.md", 14, "src/lib.rs#main"),
            ("README.md", 15, "#nowhere"),
            ("bench/README.md", 1, "../nope.md"),
        ])

        (root / "shared" / "src" / "lanes").mkdir(parents=True)
        for module in ("lib.rs", "budget.rs", "lanes/mod.rs", "lanes/merge.rs", "lanes/wake.rs"):
            (root / "shared" / "src" / module).write_text("")
        (root / "README.md").write_text("```\nshared/src/\n  lib.rs  the crate\n"
                                        "  lanes/  merge.rs\n```\n")
        (root / "bench" / "README.md").write_text("ok\n")
        problems, _, _ = check(root)
        expect("a code map missing a module and a file",
               sorted(p.problem for p in problems if p.problem.startswith("code map")),
               ["code map: lanes/wake.rs is not named on the lanes/ line",
                "code map: shared/src/budget is not named"])
        for module in ("budget.rs", "lanes/mod.rs", "lanes/merge.rs", "lanes/wake.rs", "lib.rs"):
            (root / "shared" / "src" / module).unlink()
        (root / "shared" / "src" / "lanes").rmdir()

        (root / "functions" / "lane").mkdir(parents=True)
        (root / "functions" / "lane" / "Cargo.toml").write_text("")
        (root / "functions" / "notify").mkdir()
        (root / "functions" / "notify" / "Cargo.toml").write_text("")
        (root / "template.yaml").write_text(
            "Resources:\n  Lane:\n    Type: AWS::Serverless::Function\n    Metadata:\n"
            "      Binary: ferry-lane\n")
        (root / "README.md").write_text("# Project\n\nThe two functions, not `three functions`.\n")
        (root / "bench" / "README.md").write_text("It deploys three functions.\n")
        problems, _, _ = check(root)
        expect("a template missing a function, and counts that do not match it",
               sorted((p.file, p.problem.split(":")[0]) for p in problems),
               [("README.md", "says 'two functions'"),
                ("bench/README.md", "says 'three functions'"),
                ("template.yaml", "deploys ['ferry-lane'], but functions/ builds ['ferry-lane', 'ferry-notify']")])
        (root / "template.yaml").write_text(
            "Resources:\n  Lane:\n    Type: AWS::Serverless::Function\n    Metadata:\n"
            "      Binary: ferry-lane\n  Notify:\n    Type: AWS::Serverless::Function\n"
            "    Metadata:\n      Binary: ferry-notify\n")
        (root / "bench" / "README.md").write_text("It deploys two functions.\n")
        problems, _, _ = check(root)
        expect("counts that match the template", [str(p) for p in problems], [])
        for path in ("functions/lane/Cargo.toml", "functions/notify/Cargo.toml", "template.yaml"):
            (root / path).unlink()
        (root / "functions" / "lane").rmdir()
        (root / "functions" / "notify").rmdir()
        (root / "functions").rmdir()

        (root / "README.md").write_text("# Project\n" + "line\n" * README_MAX_LINES)
        (root / "bench" / "README.md").write_text("ok\n")
        problems, _, _ = check(root)
        expect("a long README is reported", [p.problem for p in problems],
               [f"README.md has {README_MAX_LINES + 1} lines, at most {README_MAX_LINES}"])

    if failures:
        print("check-docs --self-test: FAILED", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"check-docs --self-test: ok ({len(slugs)} slugs, duplicates, link extraction, "
          "a good tree, 10 broken links, README length, the code map, the function count)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="check the checker itself")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: the one this script is in)")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    problems, files, links = check(args.root)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"check-docs: {len(problems)} problem(s) in {files} files ({links} links)", file=sys.stderr)
        return 1
    readme_lines = len((args.root / "README.md").read_text(encoding="utf-8").splitlines())
    print(f"check-docs: {links} links in {files} files ok; README.md is {readme_lines} lines "
          f"(at most {README_MAX_LINES})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
