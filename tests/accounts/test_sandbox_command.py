"""`manage.py ml_sandbox` as honcho runs it: it starts, says it is ready, and SIGTERM stops it cleanly.

The printed line is the readiness signal: the command handles SIGTERM before printing it,
so the tests signal right after reading it, never after a sleep, and the exit must be clean
however soon the signal comes (issue 9, finding 1: it used to escape as a traceback).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def start(*arguments: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "ml_sandbox", *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(process: subprocess.Popen, marker: str) -> str:
    """Read stdout up to the line containing `marker` (the command's readiness line)."""
    output = ""
    while marker not in output:
        line = process.stdout.readline()
        if not line:  # the command ended before getting ready
            pytest.fail(f"no {marker!r} in:\n{output}{process.stderr.read()}")
        output += line
    return output


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM, as honcho sends it; return (exit code, rest of stdout, stderr)."""
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_if_sandbox_idles_when_a_real_application_is_configured():
    real_application = {"ML_CLIENT_ID": "1234567890", "ML_CLIENT_SECRET": "real-secret", "DEBUG": "1"}
    process = start("--if-sandbox", "--port", "0", **real_application)
    try:
        read_until(process, "sandbox stays idle")
        assert process.poll() is None  # still running, so honcho keeps the other processes

        code, _, err = stop(process)

        assert (code, err) == (0, "")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_stops_the_serving_sandbox_cleanly(tmp_path):
    process = start("--port", "0", "--state-file", str(tmp_path / "state.json"))
    try:
        read_until(process, "Quit with CONTROL-C.")

        code, out, err = stop(process)

        assert (code, err) == (0, "")
        assert "Sandbox stopped." in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
