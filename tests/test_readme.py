"""The README's examples run as written, in the form they are shown in.

A ```python block is a script: saved to a file in a new folder and run with this Python; it
must exit 0 and write nothing to stderr. A block shown as a ``>>>`` session (or tagged
``pycon``) is checked with doctest. Blocks in other languages are not run here: ``sh`` (install
commands), ``ipython`` and untagged blocks (the lab's magics, run by the lab's tests; the
layout). New blocks are picked up by themselves, so an example cannot silently rot.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.markdown import CodeBlock, code_blocks

README = Path(__file__).resolve().parent.parent / "README.md"
PYTHON = code_blocks(README, "python", "pycon")
#: Languages the README may use, and why the ones not run here are not.
NOT_RUN = {
    "sh": "shell commands (pip install ...)",
    "ipython": "IPython magics: the lab's tests run them",
    "": "untagged: text (the layout) or magics",
}


def run_script(source: str, folder: Path, **kwargs: object) -> subprocess.CompletedProcess:
    script = folder / "example.py"
    script.write_text(source)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=folder, timeout=120, **kwargs)


def story() -> CodeBlock:
    (block,) = [b for b in PYTHON if b.section.startswith("The story in")]
    return block


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_blocks_run_as_shown(block: CodeBlock, tmp_path) -> None:
    """Each Python example runs as a script (or a doctest session) without an error."""
    if block.is_repl_session:
        test = doctest.DocTestParser().get_doctest(block.source, {}, block.id, str(README),
                                                   block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test)
        assert 0 == runner.summarize(verbose=False).failed
        return
    done = run_script(block.source, tmp_path)
    assert (0, "") == (done.returncode, done.stderr), done.stderr


def test_the_readme_has_its_examples() -> None:
    """The Python examples are found: the 30-line story, beyond one process, shared config."""
    assert ["The story in 30 lines", "Beyond one process", "One config across kernels"] == [
        b.section for b in PYTHON]


def test_every_other_block_is_a_kind_not_run_on_purpose() -> None:
    """No block in an unknown language, and no untagged block that looks like Python."""
    others = [b for b in code_blocks(README) if b not in PYTHON]
    assert [] == [b.id for b in others if b.language not in NOT_RUN]
    looks_like_python = re.compile(r"^(import \w|from \S+ import |async def |def |class \w)",
                                   re.MULTILINE)
    assert [] == [b.id for b in others if looks_like_python.search(b.source)]


def test_the_story_prints_globex_migrated(tmp_path) -> None:
    """The story prints acme's answer, globex's, then globex's at its new URL, as it says."""
    lines = run_script(story().source, tmp_path).stdout.splitlines()
    assert [
        "{'tenant': 'acme', 'db_url': 'postgres://db1/acme', 'table': 'users'}",
        "{'tenant': 'globex', 'db_url': 'postgres://db2/globex', 'table': 'users'}",
        "{'tenant': 'globex', 'db_url': 'postgres://new/globex', 'table': 'users'}",
    ] == lines


def test_the_story_pastes_into_the_asyncio_repl(tmp_path) -> None:
    """As the README says: in `python -m asyncio`, all but the last line, then `await main()`."""
    *body, last = story().source.rstrip("\n").splitlines()
    assert "asyncio.run(main())" == last
    pasted = "\n".join(body) + "\n\nawait main()\n"
    done = subprocess.run([sys.executable, "-m", "asyncio"], input=pasted, capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    output = done.stdout + done.stderr
    # A traceback, or a SyntaxError/IndentationError (shown without one), for any pasted line.
    assert [] == re.findall(r"^(?:Traceback|\w+Error\b).*", output, re.MULTILINE), output
    assert "'db_url': 'postgres://new/globex'" in done.stdout


def test_the_shared_config_example_reads_its_own_write_across_kernels(tmp_path) -> None:
    """b reads a's value from the bucket; a answers b's call with b's write; history says
    who wrote each revision."""
    (block,) = [b for b in PYTHON if b.section == "One config across kernels"]
    done = run_script(block.source, tmp_path)
    assert [
        "b reads: postgres://db2/globex",
        "a answers: postgres://new/globex",
        "written by: ['kernel', 'b']",
    ] == done.stdout.splitlines(), done.stderr
