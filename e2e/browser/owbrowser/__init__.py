"""Helpers of the browser end-to-end suite: the stack as run.sh starts it, a person at a
browser, accessibility checks, TOTP codes and the material files a citizen uploads."""
