"""`diffseg30k train` as a process: SIGKILL then --resume, and 2-process DDP with accelerate launch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffseg30k.cli import main

ARGS = ["--model", "segformer-tiny", "--crop-size", "32", "--batch-size", "2", "--num-workers", "0",
        "--log-with", "none", "--no-progress"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    from diffseg30k.data.convert import convert
    from diffseg30k.data.synthetic import write_synthetic_release

    root = tmp_path_factory.mktemp("release")
    write_synthetic_release(root, num=8, size=(48, 48), split="train")
    write_synthetic_release(root, num=3, size=(40, 56), split="val", start_id=100)
    convert([root / "train_copy", root / "val_copy"], root / "converted", progress=False)
    return root / "converted"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_list_models_and_argument_errors(capsys):
    assert main(["train", "--list-models"]) == 0
    listing = capsys.readouterr().out
    assert "deeplabv3plus-r50" in listing and "microsoft/resnet-50" in listing and "segformer-b2" in listing
    assert main(["train", "--dataset", "x"]) == 2
    assert main(["train", "--dataset", "x", "--out", "y", "--model", "nope"]) == 2
    assert "available" in capsys.readouterr().err


def test_sigkill_mid_training_then_resume(converted, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "diffseg30k", "train", "--dataset", str(converted), "--out", str(out),
               *ARGS, "--max-steps", "100000", "--save-every", "2", "--eval-every", "0"]
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    try:
        while not (out / "checkpoints" / "step_4").exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    steps = sorted(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    last = steps[-1]
    for step in steps:  # every complete-looking checkpoint is complete
        state = json.loads((out / "checkpoints" / f"step_{step}" / "trainer_state.json").read_text())
        assert state["step"] == step
    resumed = subprocess.run(command + ["--resume", "--stop-after", str(last + 3)],
                             env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {out / 'checkpoints'}" in resumed.stdout + resumed.stderr
    final = out / "checkpoints" / f"step_{last + 3}"
    assert json.loads((final / "trainer_state.json").read_text())["step"] == last + 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_with_accelerate_launch(converted, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
               "-m", "diffseg30k", "train", "--dataset", str(converted), "--out", str(out), *ARGS,
               "--task", "binary", "--max-steps", "4", "--save-every", "2", "--eval-every", "2"]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.splitlines().count(str(out / "best")) == 1  # the summary once, not per process
    info = json.loads((out / "best" / "diffseg30k.json").read_text())
    assert info["task"] == "binary" and "binary_miou" in info["eval"]
    assert (out / "checkpoints" / "step_4" / "random_states_1.json").is_file()  # one RNG state per rank
    assert json.loads((out / "checkpoints" / "step_4" / "trainer_state.json").read_text())["step"] == 4
