"""Ctrl-C is one line and exit code 130; a run folder is used by one kslim-slim at a time."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kslim.slimming.run_dir import LOCK_FILE, RunDir

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin")
_HOLD = (
    "import sys, time\n"
    "from kslim.slimming.run_dir import RunDir\n"
    "RunDir(sys.argv[1]).lock()\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


def _slim(*args):
    # Long enough that the Ctrl-C always comes during training.
    return [sys.executable, os.path.join(BIN, "kslim-slim"), "--limit", "1024", "--epochs", "500",
            "--finetune_epochs", "1", "--noplots", *args]


def _wait_for(process, text, timeout=120):
    start = time.monotonic()
    for line in process.stdout:
        if text in line:
            return
        assert time.monotonic() - start < timeout, f"no {text!r} after {timeout} s"
    raise AssertionError(f"the process ended before printing {text!r}: {process.wait()}")


def test_ctrl_c_during_training_is_one_line_and_exit_code_130_and_the_run_resumes(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(_slim("--run_dir", str(run_dir)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        _wait_for(process, "pass 1/1: sparsity training")
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["kslim-slim: interrupted; run the same command again to resume."]
    assert not (run_dir / LOCK_FILE).exists()  # the folder is free for the same command again


def test_ctrl_c_of_a_command_that_does_not_resume_says_nothing_was_written(tmp_path):
    output = tmp_path / "o.keras"
    process = subprocess.Popen([sys.executable, os.path.join(BIN, "kslim-train"), "--model", "mlp", "--limit",
                                "1024", "--epochs", "500", "--output", str(output)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        _wait_for(process, "training of ")
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["kslim-train: interrupted; nothing was written."]
    assert os.listdir(tmp_path) == []


@pytest.fixture
def holder(tmp_path):
    """A real process that holds the lock of tmp_path / 'run'."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield run_dir, process
    process.kill()
    process.wait()


def test_a_run_folder_in_use_by_a_live_process_is_refused_naming_it_and_its_pid(holder):
    run_dir, process = holder
    with pytest.raises(ValueError, match=rf"run_dir {run_dir} is in use by another kslim run \(pid {process.pid}\)"):
        RunDir(run_dir).open({"passes": 1})
    assert sorted(os.listdir(run_dir)) == [LOCK_FILE]  # nothing of the refused run was written
    process.kill()
    process.wait()
    folder = RunDir(run_dir)  # a dead process's lock is taken over
    assert folder.open({"passes": 1}) == []
    assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())
    folder.close()
    assert not (run_dir / LOCK_FILE).exists()


def test_a_second_kslim_slim_on_a_folder_in_use_is_one_line_and_leaves_it_alone(holder):
    run_dir, process = holder
    result = subprocess.run(_slim("--run_dir", str(run_dir)), capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"kslim-slim: error: run_dir {run_dir} is in use by another kslim run (pid {process.pid}); wait for it "
        f"to finish or stop it, or choose another run_dir (if no kslim run is there, delete "
        f"{run_dir / LOCK_FILE})."
    ]
    assert sorted(os.listdir(run_dir)) == [LOCK_FILE]
    assert (run_dir / LOCK_FILE).read_text().strip() == str(process.pid)
