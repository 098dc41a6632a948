"""The local stack as `deploy/local/run.sh` starts it, on free loopback ports and a run folder of
its own, for one test session.

run.sh is started exactly as a person starts it (the README's first command), with the settings it
documents: `OW_BIN_DIR` (the binaries `cargo test` built, so nothing is built twice), `OW_RUN_DIR`,
`OW_PORTAL_LISTEN` and `OW_OFFICE_LISTEN`. The staff credentials come from what its seeding wrote
(`demo-seed.json` in the run folder).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import totp

REPO = Path(__file__).resolve().parents[3]
RUN_SH = REPO / "deploy" / "local" / "run.sh"
READY_LINE = "OneWindow local stack is running"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """A running stack: its URLs, its run folder and what the seeding printed."""

    portal: str
    office: str
    run_dir: Path
    seed: dict
    process: subprocess.Popen
    output: Path
    # The last TOTP step each staff member used: a code is accepted once, so a second sign-in
    # by the same person waits for the next step.
    totp_steps: dict = field(default_factory=dict)

    def staff(self, district: str, role: str) -> dict:
        for s in self.seed["staff"]:
            if s["district_code"] == district and role in s["roles"]:
                if not s.get("password") or not s.get("totp_secret"):
                    raise AssertionError(
                        f"the seeding did not print credentials for {s['username']}"
                    )
                return s
        raise AssertionError(f"no seeded staff of {district} with role {role}")

    def unit(self, code: str) -> dict:
        for u in self.seed["units"]:
            if u["unit_code"] == code:
                return u
        raise AssertionError(f"no seeded unit {code}")

    def totp_code(self, staff: dict) -> str:
        """A fresh TOTP code for `staff`, waiting for the next step if this one was used."""
        username = staff["username"]
        while True:
            step = totp.current_step()
            if self.totp_steps.get(username, -1) < step:
                self.totp_steps[username] = step
                return totp.code(staff["totp_secret"], step)
            time.sleep(0.5)

    def logs(self) -> dict[str, Path]:
        return {p.name: p for p in sorted(self.run_dir.glob("*.log"))} | {
            "run.sh.out": self.output
        }


def start(bin_dir: str | None, timeout: float = 900) -> Stack:
    """Starts run.sh and waits until it says the stack is running (or fails with its output)."""
    if not RUN_SH.is_file():
        raise AssertionError(f"{RUN_SH} is missing")
    run_dir = Path(tempfile.mkdtemp(prefix="ow-browser-run-"))
    output = run_dir / "run.sh.out"
    portal_port, office_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        OW_RUN_DIR=str(run_dir),
        OW_PORTAL_LISTEN=f"127.0.0.1:{portal_port}",
        OW_OFFICE_LISTEN=f"127.0.0.1:{office_port}",
    )
    if bin_dir:
        env["OW_BIN_DIR"] = bin_dir
    else:
        env.setdefault("OW_PROFILE", "debug")
    with open(output, "wb") as out:
        process = subprocess.Popen(
            ["bash", str(RUN_SH)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        text = output.read_text(errors="replace")
        if READY_LINE in text:
            break
        if process.poll() is not None:
            raise AssertionError(
                f"deploy/local/run.sh exited ({process.returncode}) before the stack ran:\n{text}"
            )
        if time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(f"deploy/local/run.sh did not start within {timeout} s:\n{text}")
        time.sleep(0.2)
    seed = json.loads((run_dir / "demo-seed.json").read_text())
    return Stack(
        portal=f"http://127.0.0.1:{portal_port}",
        office=f"http://127.0.0.1:{office_port}",
        run_dir=run_dir,
        seed=seed,
        process=process,
        output=output,
    )


def stop_process(process: subprocess.Popen) -> None:
    """Stops run.sh as its trap expects (SIGTERM, handled like Ctrl-C: it stops its children
    and waits for them), then the whole group if need be. Not SIGINT: a shell started in the
    background of a non-interactive shell, as CI jobs often are, ignores it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def stop(stack: Stack, keep_logs_in: Path | None) -> None:
    stop_process(stack.process)
    if keep_logs_in is not None:
        keep_logs_in.mkdir(parents=True, exist_ok=True)
        for name, path in stack.logs().items():
            if path.is_file():
                shutil.copyfile(path, keep_logs_in / name)
    shutil.rmtree(stack.run_dir, ignore_errors=True)
