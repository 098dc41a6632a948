"""Accessibility checks with axe-core (from the npm registry: `npm ci` in e2e/browser), run in
the page as it stands after each step.

A finding is a serious or critical violation, or any colour-contrast violation (text below
4.5:1, or 3:1 for large text: WCAG 2 AA). Findings already reported to the pages' owners are
listed in KNOWN with the reason; the suite fails on any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"


@dataclass(frozen=True)
class Known:
    """A violation reported to the pages' owners: tolerated until their fix, which removes it."""

    rule: str
    detail_contains: str
    why: str

    def matches(self, finding: "Finding") -> bool:
        return finding.rule == self.rule and self.detail_contains in finding.detail


KNOWN: list[Known] = [
    Known(
        rule="color-contrast",
        detail_contains="foreground color: #0b57a4, background color: #0f3d75",
        why="portal header: the 退出登录 button is link blue on the dark blue header (1.49:1)",
    ),
]

FAILING_IMPACTS = {"serious", "critical"}


@dataclass(frozen=True)
class Finding:
    route: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]
    detail: str = ""

    def line(self) -> str:
        where = ", ".join(self.targets[:3])
        more = f" (+{len(self.targets) - 3})" if len(self.targets) > 3 else ""
        detail = f" — {self.detail}" if self.detail else ""
        return f"{self.route}: {self.rule} [{self.impact}] {self.help} — {where}{more}{detail}"


def axe_source() -> str:
    if not AXE.is_file():
        raise AssertionError(
            f"{AXE} is missing: run `npm ci` in e2e/browser (the suite's package-lock.json)"
        )
    return AXE.read_text()


_SOURCE: str | None = None


def check(page: Page, route: str) -> list[Finding]:
    """Runs axe on the page (WCAG 2 A/AA rules and best practices); returns the findings."""
    global _SOURCE
    if _SOURCE is None:
        _SOURCE = axe_source()
    # Evaluated through the DevTools protocol, so the pages' Content-Security-Policy (no inline
    # scripts) stays in force for everything else.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_SOURCE)
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')),
                detail: (v.nodes[0] && v.nodes[0].failureSummary || '').replace(/\\s+/g, ' ').trim(),
            }));
        }"""
    )
    findings = []
    for v in result:
        if v["impact"] in FAILING_IMPACTS or v["id"] == "color-contrast":
            findings.append(
                Finding(
                    route,
                    v["id"],
                    v["impact"] or "",
                    v["help"],
                    tuple(v["targets"]),
                    v["detail"][:300],
                )
            )
    return findings


def unexpected(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not any(k.matches(f) for k in KNOWN)]
