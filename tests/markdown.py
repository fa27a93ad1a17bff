"""Code blocks of a Markdown file, by language, for tests that run documentation as written.

    from tests.markdown import code_blocks

    for block in code_blocks(Path("README.md"), "ipython"):   # e.g. the lab's magic blocks
        ...

Only fenced blocks (three or more backticks at the start of a line, closed by the same
fence) are blocks; the language is the first word of the info string (``""`` when none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeBlock", "code_blocks"]

_FENCE = re.compile(r"^(`{3,})\s*([^`\s]*)[^`]*$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language, its text, where it starts and under which heading."""

    language: str
    source: str
    line: int  # 1-based line of the opening fence
    section: str  # the nearest heading above it, without the #s

    @property
    def is_repl_session(self) -> bool:
        """Shown as an interactive session (``>>>`` prompts), so checked with doctest."""
        first = next((line for line in self.source.splitlines() if line.strip()), "")
        return self.language == "pycon" or first.startswith(">>>")

    @property
    def id(self) -> str:
        """A readable test id: ``the-story-in-30-lines:171``."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-") or "top"
        return f"{slug}:{self.line}"


def code_blocks(path: Path, *languages: str) -> list[CodeBlock]:
    """Every fenced code block in ``path`` (only those of ``languages``, when given)."""
    blocks: list[CodeBlock] = []
    section = ""
    fence: str | None = None
    language, start, body = "", 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is None:
            match = _FENCE.match(line)
            if match:
                fence, language, start, body = match.group(1), match.group(2), number, []
            elif line.startswith("#"):
                section = line.lstrip("#").strip()
        elif line.rstrip() == fence:
            blocks.append(CodeBlock(language, "\n".join(body) + "\n", start, section))
            fence = None
        else:
            body.append(line)
    if fence is not None:
        raise ValueError(f"{path}:{start}: a code block opened with {fence} is never closed")
    return [b for b in blocks if not languages or b.language in languages]
