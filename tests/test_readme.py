"""The README keeps its promises: short, every link leads somewhere, and every command in it runs
as written (on tiny data: the demo set smaller, training shorter, by options appended to the
command, which win over the preset's)."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Options appended to a README command so that it runs on tiny data in a test.
TINY = {"demo-data": ["--per-class", "12"], "train": ["--fine-tune-epochs", "2"]}
# Commands that start a server and run until stopped: only their flags are checked.
LONG_RUNNING = {"serve"}
SCRIPTS = {"bash scripts/app.sh", "bash scripts/test.sh"}


def readme_commands() -> list[str]:
    """Every command line in the README's bash blocks, comments stripped, in order."""
    text = README.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].split(" # ")[0].strip()
            if command:
                lines.append(command)
    return lines


def test_readme_is_short_and_names_its_licence():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, len(lines)
    assert (ROOT / "LICENSE").is_file() and any("Licence: MIT" in line for line in lines)
    assert re.search(r'^license = "MIT"', (ROOT / "pyproject.toml").read_text(), flags=re.M)


@pytest.mark.parametrize("doc", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_every_relative_link_leads_to_a_file(doc):
    path = ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc}: {broken}"


def test_every_readme_command_is_one_the_test_knows_and_servers_parse_their_flags():
    from tlcore.cli.parser import build_parser

    commands = readme_commands()
    assert commands, "no ```bash block in the README"
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command)
        if command in SCRIPTS:
            assert (ROOT / argv[1]).is_file(), command
            continue
        assert argv[0] == "tlcore", f"the test does not know how to run: {command}"
        if len(argv) > 1 and argv[1] in LONG_RUNNING:
            args = parser.parse_args(argv[1:])  # exits (SystemExit) on an unknown flag or value
            assert args.command == argv[1]
    assert any(shlex.split(c)[1:2] == ["serve"] for c in commands if c.startswith("tlcore"))
    app = (ROOT / "scripts/app.sh").read_text()
    assert "streamlit run server.py" in app and '"$@"' in app  # what `bash scripts/app.sh` starts (app.py)


@pytest.mark.slow
def test_every_readme_tlcore_command_runs_as_written_on_tiny_data(tmp_path):
    env = dict(os.environ, TLCORE_HOME=str(tmp_path / "home"), TF_CPP_MIN_LOG_LEVEL="2")
    ran = []
    for command in readme_commands():
        argv = shlex.split(command)
        if argv[0] != "tlcore" or (len(argv) > 1 and argv[1] in LONG_RUNNING):
            continue
        extra = TINY.get(argv[1], []) if len(argv) > 1 else []
        proc = subprocess.run([sys.executable, "-m", "tlcore", *argv[1:], *extra], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, command
        if "--json" in argv:
            json.loads(proc.stdout)  # exactly one JSON document
        ran.append(argv[1] if len(argv) > 1 else "")
    assert {"demo-data", "train", "evaluate", "predict", "export", "runs"} <= set(ran)
    assert (tmp_path / "shapes" / "train").is_dir()  # demo-data wrote into the current folder
    assert not (tmp_path / "home" / "runs" / "first").exists()  # the README's last step deleted it
