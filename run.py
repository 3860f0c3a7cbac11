"""Set up and run DealCase with nothing but Python 3.11.

    python3 run.py app     install what is needed, then start the app
    python3 run.py test    install what is needed, then format check, lint, tests

Dependencies go into ``.venv`` next to this file; they are installed again only
when ``requirements.txt`` changes. Extra arguments are passed on (to Streamlit
for ``app``, to pytest for ``test``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".requirements-sha256"


def _venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _ensure_environment() -> Path:
    python = _venv_python()
    if not python.exists():
        print("Creating virtual environment in .venv ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)

    requirements = (ROOT / "requirements.txt").read_bytes()
    digest = hashlib.sha256(requirements).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        print("Installing pinned dependencies ...", file=sys.stderr)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        subprocess.run([*pip, "-q", "-r", str(ROOT / "requirements.txt")], check=True)
        STAMP.write_text(digest)
    return python


def _run(command: list[str]) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"app", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    python = str(_ensure_environment())
    action, rest = argv[0], argv[1:]

    if action == "app":
        return _run([python, "-m", "streamlit", "run", "app.py", *rest])

    for step in (
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "ruff", "check", "."],
    ):
        code = _run(step)
        if code != 0:
            print(f"'{' '.join(step[1:])}' failed; fix it and run again.")
            return code
    return _run([python, "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
