"""The command line: help, version, and one clear line for bad input."""

import os
import subprocess
import sys

import pytest

import vigil
from vigil.cli.main import main

VIGIL = [sys.executable, "-m", "vigil"]


def run(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*VIGIL, *args]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_version_names_what_vigil_speaks():
    done = run("--version")
    assert done.returncode == 0
    assert f"vigil {vigil.__version__}" in done.stdout
    assert "heartbeat 3.0.6" in done.stdout and "ldirectord" in done.stdout


def test_help_lists_commands_with_their_purpose():
    done = run("--help")
    assert done.returncode == 0
    assert "lab" in done.stdout and "demo" in done.stdout
    assert "ha.cf" in done.stdout  # says which files it reads


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: vigil" in capsys.readouterr().out


def test_unknown_lab_is_one_line_without_traceback():
    done = run("lab", "exec", "--lab", "no-such-lab", "server5", "--", "true")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "no-such-lab" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_lab_up_as_non_root_refuses_clearly_and_leaves_nothing(tmp_path):
    prefix = f"nr{os.getpid()}"
    done = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *VIGIL, "lab", "up"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "VIGIL_LAB_ROOT": str(tmp_path / "labs"), "VIGIL_LAB_PREFIX": prefix},
    )
    assert done.returncode == 3
    assert done.stderr.strip() == "vigil: vigil lab needs root (network and mount namespaces)"
    namespaces = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert not [name for name in namespaces if name.startswith(prefix)]
    assert not (tmp_path / "labs").exists()


def test_every_command_word_is_registered_by_the_module_the_table_names():
    """The table main.py loads one command from must say what the modules register."""
    import argparse
    import importlib

    from vigil.cli.main import COMMANDS

    for module_name in set(COMMANDS.values()):
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module_name).register(subparsers)
        registered = set(subparsers.choices)
        assert registered == {word for word, name in COMMANDS.items() if name == module_name}


def test_one_command_imports_its_own_module_and_not_the_others():
    probe = ("import sys, vigil.cli.main as m\n"
             "try:\n    m.main(['lvs', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(n for n in sys.modules if n.startswith('vigil.cli.')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = done.stdout.splitlines()[-1]
    assert "'vigil.cli.lvs'" in loaded
    assert "'vigil.cli.volume'" not in loaded and "'vigil.cli.heartbeat'" not in loaded


def test_drbdadms_options_before_the_verb_still_reach_the_volume_command():
    done = run("volume", "--", "--clear-bitmap", "new-current-uuid", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: vigil volume" in done.stdout


def test_lab_multipath_applies_to_the_ecmp_topology_only(capsys):
    assert main(["lab", "up", "--multipath", "resilient"]) == 2
    assert "--multipath applies to the ecmp topology only" in capsys.readouterr().err
