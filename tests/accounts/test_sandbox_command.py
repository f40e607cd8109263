import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_if_sandbox_idles_when_a_real_application_is_configured():
    env = {**os.environ, "ML_CLIENT_ID": "1234567890", "ML_CLIENT_SECRET": "real-secret", "DEBUG": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ml_sandbox", "--if-sandbox", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        assert "sandbox stays idle" in first_line
        assert process.poll() is None  # still running, so honcho keeps the other processes
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
