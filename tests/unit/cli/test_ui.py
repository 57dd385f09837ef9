"""`kpi ui`: the command's options and the way it stops a process group.

(The web interface itself, in headless Chromium, is tests/integration/test_ui_browser.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.cli import build_parser
from dagster_project.cli.ui import group_alive, skip_community_popup, stop_group, ui_command


def test_ui_options_and_command():
    args = build_parser().parse_args(["ui"])
    assert (args.port, args.host) == (3000, "127.0.0.1")
    args = build_parser().parse_args(["ui", "--port", "3100", "--host", "0.0.0.0"])
    assert (args.port, args.host) == (3100, "0.0.0.0")
    command = ui_command("127.0.0.1", 3100)
    assert Path(command[0]).name == "dagster"
    assert command[1:] == ["dev", "-m", "dagster_project.definitions", "-h", "127.0.0.1"] + [
        "-p",
        "3100",
    ]


def test_skip_community_popup_marks_it_seen(tmp_path):
    skip_community_popup(tmp_path)
    assert (tmp_path / ".nux" / "nux.yaml").read_text(encoding="utf-8") == "seen: 1\n"


def test_stop_group_stops_a_group_that_ignores_ctrl_c():
    # a parent that ignores SIGINT and a child that ignores SIGINT and SIGTERM
    script = "trap '' INT; (trap '' INT TERM; sleep 60) & sleep 60; wait"
    process = subprocess.Popen(["sh", "-c", script], process_group=0)
    time.sleep(0.3)
    started = time.monotonic()
    stop_group(process, timeout=1.0, grace=1.0)
    assert time.monotonic() - started < 10
    assert process.returncode is not None
    assert not group_alive(process.pid)


def test_stop_group_lets_a_well_behaved_group_exit_on_ctrl_c():
    code = "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
    process = subprocess.Popen([sys.executable, "-c", code + "time.sleep(60)"], process_group=0)
    time.sleep(0.5)
    started = time.monotonic()
    assert stop_group(process, timeout=20.0) == -signal.SIGINT
    assert time.monotonic() - started < 10
    assert not group_alive(process.pid)
