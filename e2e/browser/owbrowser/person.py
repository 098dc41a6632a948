"""A person at a browser: clicks, types and presses Enter through Playwright, while the walk is
recorded — which pages they saw, how many fields they filled and how many times they clicked on
each — with a screenshot of every step and an accessibility check of every page they reach."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Locator, Page, expect

from . import a11y

ID_SEGMENT = re.compile(r"^(?=.*\d)[0-9A-Za-z_-]{6,}$")


def route_of(url: str) -> str:
    """`/drafts/0f3a…/materials` → `/drafts/{id}/materials`: one name per page, not per object."""
    parts = urlsplit(url)
    segments = [
        "{id}" if ID_SEGMENT.match(s) else s for s in parts.path.split("/")
    ]
    return "/".join(segments) or "/"


@dataclass
class PageVisit:
    route: str
    heading: str
    fields: int = 0
    clicks: int = 0
    enters: int = 0


@dataclass
class Person:
    """One person's browser tab. `name` names their screenshots folder."""

    name: str
    page: Page
    artifacts: Path
    a11y_findings: list = field(default_factory=list)
    check_a11y: bool = True
    visits: list[PageVisit] = field(default_factory=list)
    _shots: int = 0
    _checked_routes: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.page.on("framenavigated", self._navigated)

    # --- what the person does -------------------------------------------------------------

    def open(self, url: str) -> None:
        """Types an address (or follows a link from elsewhere, such as a QR code)."""
        self.page.goto(url)
        self._arrived()

    def click(self, target: Locator) -> None:
        self._current().clicks += 1
        target.click()
        self._arrived()

    def fill(self, target: Locator, value: str) -> None:
        """Clicks into a field and types, as a person does (clearing what was there)."""
        self._current().fields += 1
        target.fill(value)

    def retype(self, target: Locator, value: str) -> None:
        """Corrects a field after an error: counted as a field again."""
        self.fill(target, value)

    def choose_file(self, target: Locator, path: Path) -> None:
        self._current().fields += 1
        target.set_input_files(str(path))

    def tick(self, target: Locator) -> None:
        self._current().fields += 1
        target.check()

    def press_enter(self, target: Locator) -> None:
        self._current().enters += 1
        target.press("Enter")
        self._arrived()

    # --- what the test looks at ------------------------------------------------------------

    def shot(self, step: str) -> Path:
        """A full-page screenshot named after the step, numbered in walk order."""
        self._shots += 1
        safe = re.sub(r"[^0-9A-Za-z_-]+", "-", step).strip("-")
        path = self.artifacts / f"{self._shots:02d}-{safe}.png"
        self.page.screenshot(path=str(path), full_page=True, scale="css")
        return path

    def main_text(self) -> str:
        return self.page.locator("main").inner_text()

    def expect_heading(self, text: str) -> None:
        expect(self.page.get_by_role("heading", level=1)).to_contain_text(text)

    def metrics(self) -> dict:
        """The walk in figures: page loads, distinct pages, fields, clicks, and each page's
        share."""
        return {
            "page_loads": len(self.visits),
            "distinct_pages": len({v.route for v in self.visits}),
            "fields": sum(v.fields for v in self.visits),
            "clicks": sum(v.clicks for v in self.visits),
            "enters": sum(v.enters for v in self.visits),
            "per_page": [v.__dict__ for v in self.visits],
        }

    def write_metrics(self, name: str) -> dict:
        figures = self.metrics()
        (self.artifacts / f"{name}.json").write_text(
            json.dumps(figures, ensure_ascii=False, indent=2)
        )
        return figures

    # --- bookkeeping -----------------------------------------------------------------------

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self.visits.append(PageVisit(route=route_of(frame.url), heading=""))

    def _current(self) -> PageVisit:
        if not self.visits:
            self.visits.append(PageVisit(route=route_of(self.page.url), heading=""))
        return self.visits[-1]

    def _arrived(self) -> None:
        """After an action: wait for the page, name it, and check a page not checked before."""
        self.page.wait_for_load_state("load")
        visit = self._current()
        if not visit.heading:
            h1 = self.page.locator("h1").first
            visit.heading = h1.inner_text() if h1.count() else ""
        if self.check_a11y and visit.route not in self._checked_routes:
            self._checked_routes.add(visit.route)
            self.a11y_findings.extend(a11y.check(self.page, visit.route))
