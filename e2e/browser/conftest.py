"""Fixtures of the browser end-to-end suite (docs/browser-tests.md).

* `stack`: the local stack started by deploy/local/run.sh for the whole session;
* `browser`: Debian's Chromium (/usr/bin/chromium, or OW_CHROMIUM) driven by Playwright —
  never a browser Playwright downloads;
* `person`: makes people (a browser context each: a phone-sized citizen, a desktop registrar);
* `artifacts`: target/browser-artifacts/<test>/ (or OW_BROWSER_ARTIFACTS), the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from owbrowser import a11y
from owbrowser import stack as stack_mod
from owbrowser.person import Person

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def artifacts_root() -> Path:
    env = os.environ.get("OW_BROWSER_ARTIFACTS")
    return Path(env) if env else stack_mod.REPO / "target" / "browser-artifacts"


def pytest_sessionstart(session) -> None:
    root = artifacts_root()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def stack():
    running = stack_mod.start(os.environ.get("OW_BIN_DIR") or None)
    try:
        yield running
    finally:
        stack_mod.stop(running, artifacts_root() / "logs")


@pytest.fixture(scope="session")
def playwright_instance():
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    executable = os.environ.get("OW_CHROMIUM", "/usr/bin/chromium")
    b = playwright_instance.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def artifacts(request) -> Path:
    name = re.sub(r"[^0-9A-Za-z_-]+", "-", request.node.name).strip("-")
    folder = artifacts_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def person(browser, artifacts):
    """`person(name, viewport, javascript=True)` → a Person in a fresh browser context."""
    contexts = []
    findings: list = []

    def make(name: str, viewport: dict, javascript: bool = True) -> Person:
        context = browser.new_context(
            viewport=viewport,
            java_script_enabled=javascript,
            locale="zh-CN",
            is_mobile=viewport is PHONE,
            has_touch=viewport is PHONE,
            # A phone of that size draws three device pixels per CSS pixel.
            device_scale_factor=3 if viewport is PHONE else 1,
            accept_downloads=True,
        )
        context.set_default_timeout(30_000)
        contexts.append(context)
        return Person(
            name=name,
            page=context.new_page(),
            artifacts=artifacts / name,
            a11y_findings=findings,
            check_a11y=javascript,
        )

    make.findings = findings
    yield make
    for context in contexts:
        context.close()
    if findings:
        report = "\n".join(f.line() for f in findings)
        (artifacts / "a11y.txt").write_text(report + "\n")


def assert_accessible(findings: list) -> None:
    """No serious or critical axe violation and no contrast below 4.5:1, except those listed in
    owbrowser.a11y.KNOWN (reported, with the pages' owners)."""
    new = a11y.unexpected(findings)
    assert not new, "accessibility violations:\n" + "\n".join(f.line() for f in new)
