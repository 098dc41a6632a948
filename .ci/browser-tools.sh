#!/usr/bin/env bash
# Installs what the browser end-to-end suite (e2e/browser, docs/browser-tests.md) needs on a fresh
# Debian machine, and only what is missing (idempotent): Debian's Chromium and ChromeDriver, a
# CJK font (the pages are Chinese; screenshots and contrast checks need real glyphs), xorriso
# (offline media), the Python tools (Playwright — never `playwright install`: the suite runs the
# system Chromium —, pytest, bagit, schemathesis) and the suite's npm packages (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
command -v xorriso >/dev/null || need_apt+=(xorriso)
fc-list :lang=zh 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-microhei fontconfig)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python=${OW_PYTHON:-python3}
need_pip=()
"$python" -c "import playwright.sync_api" 2>/dev/null || need_pip+=(playwright)
"$python" -c "import pytest" 2>/dev/null || need_pip+=(pytest)
"$python" -c "import bagit" 2>/dev/null || need_pip+=(bagit)
"$python" -c "import schemathesis" 2>/dev/null || need_pip+=(schemathesis)
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "==> pip install ${need_pip[*]}"
  "$python" -m pip install --quiet "${need_pip[@]}"
fi

echo "==> npm ci (e2e/browser: axe-core, jsqr)"
(cd e2e/browser && npm ci --no-audit --no-fund --silent)
