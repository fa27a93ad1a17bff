"""Fixtures for tests in a real browser: a JupyterLab server, Debian's Chromium, one lab page.

Chromium is a system package (``apt-get install -y chromium``; ``.ci/chromium`` installs it
for ``make test`` and ``.ci/run``). With ``/usr/bin/chromium`` missing, the tests fail, saying
what to run; only outside CI (the ``CI`` environment variable unset) do they skip instead,
with the same reason. A Chromium that is there but does not start always fails.

The server and the browser live for one test module (module scope: Playwright's sync API
runs an event loop of its own, which must be gone before the async tests of other modules
run); each test gets a fresh page with its own workspace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import CHROMIUM, BrowserUnavailable, JupyterLab, LabPage, launch_chromium


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in Debian's headless Chromium (tests/browser)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory, kernel_name: str) -> Iterator[JupyterLab]:
    """JupyterLab on 127.0.0.1 in a temporary home, running the venv's kernel."""
    with JupyterLab(tmp_path_factory.mktemp("jupyterlab"), kernel_name=kernel_name,
                    env=dict(os.environ)) as lab:
        yield lab


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A Playwright browser context in Debian's headless Chromium, with a fresh profile."""
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is missing (and CI is unset); to run the browser tests: "
                    "apt-get update && apt-get install -y chromium")
    try:
        with launch_chromium() as context:
            yield context
    except BrowserUnavailable as error:
        pytest.fail(f"the browser tests need Chromium: {error}", pytrace=False)


@pytest.fixture
def lab_page(request: pytest.FixtureRequest, chromium: Any, jupyterlab: JupyterLab,
             tmp_path: Path) -> Iterator[LabPage]:
    """A new tab on the lab; on failure its screenshot is kept in the test's tmp_path."""
    page = chromium.new_page()
    lab_page = LabPage(page, jupyterlab)
    try:
        yield lab_page
    finally:
        if request.node.stash.get(_FAILED, False):
            shot = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failed page: {shot}{lab_page.diagnostics()}")
            except Exception as error:  # the page may be what broke
                print(f"no screenshot of the failed page: {error}")
        page.close()
