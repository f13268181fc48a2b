"""The README and docs/ link only inside the repository, to files (and headings) that exist.

A clone from a forge has nothing outside the repository, so a relative link that climbs out of
it (`../shared/...`) or names a missing file is a broken contract for the reader.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets (badges).
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def markdown_files(root: Path = ROOT) -> list[Path]:
    files = [root / "README.md", *root.glob("docs/**/*.md"), *root.glob("bench/**/*.md")]
    return sorted(f for f in files if f.is_file())


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, CODE_SPAN.sub("", line)


def links(text: str) -> Iterator[tuple[int, str]]:
    for n, line in prose_lines(text):
        for pattern in (INLINE, REFERENCE, HTML):
            for m in pattern.finditer(line):
                yield n, m.group(1)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            base = slug(m.group(2))
            out.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return out


def problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the links of one markdown file, one line per broken link."""
    out = []
    root, path = root.resolve(), path.resolve()
    rel = path.relative_to(root)
    for n, target in links(path.read_text(encoding="utf-8")):
        where = f"{rel}:{n}: {target}"
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue  # an absolute URL is not a file of the repository
        if target.startswith("/"):
            out.append(f"{where}: a root-relative link; write it relative to the file")
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.is_relative_to(root):
            out.append(f"{where}: leaves the repository")
            continue
        if not dest.exists():
            out.append(f"{where}: no such file")
            continue
        if fragment and dest.suffix == ".md" and unquote(fragment) not in anchors(dest):
            out.append(f"{where}: no heading #{fragment} in {dest.relative_to(root)}")
    return out


def test_readme_and_docs_exist() -> None:
    names = {f.relative_to(ROOT).as_posix() for f in markdown_files()}
    assert {"README.md", "docs/semantics.md", "docs/architecture.md", "docs/operations.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_stay_inside_the_repository_and_resolve(path: Path) -> None:
    assert problems(path) == []


def test_the_checker_finds_broken_links(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "b.md").write_text("# B page\n\n## Some `code`, and more\n")
    (repo / "README.md").write_text(
        "# Title\n"
        "[ok](docs/b.md) [anchor](docs/b.md#some-code-and-more) [self](#title)\n"
        "[web](https://example.org/x) ![img](docs/) [mail](mailto:a@b.c)\n"
        "[out](../shared/spec.md) [gone](docs/missing.md) [bad anchor](docs/b.md#nope)\n"
        "`[in code](../x.md)` [root](/docs/b.md)\n"
        "```\n[in a fence](../y.md)\n```\n"
        '[ref]: ../z.md\n<a href="../w.md">w</a>\n'
    )
    found = problems(repo / "README.md", repo)
    assert [p.split(": ", 2)[1] for p in found] == [
        "../shared/spec.md",
        "docs/missing.md",
        "docs/b.md#nope",
        "/docs/b.md",
        "../z.md",
        "../w.md",
    ]
