"""First contact (issue 12): run folders are checkpoints, offline and missing paths fail at once with
the real cause, flag-named hints, honest card datasets and demo examples, the thread rule, outputs'
permissions and git hygiene."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffseg30k.cli import main
from diffseg30k.data.synthetic import synthetic_pair, write_synthetic_release

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A folder laid out like `diffseg30k train --out runs/x` leaves it: best/ + checkpoints/."""
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    run = tmp_path_factory.mktemp("runs") / "x"
    export_detector(build_model("fcn8s-tiny", task="semantic"), run / "best", {"step": 3})
    (run / "checkpoints" / "step_3").mkdir(parents=True)
    return run


def test_a_run_folder_is_its_best_checkpoint_everywhere(run_folder, tmp_path, capsys):
    from diffseg30k.demo import load_detector
    from diffseg30k.detector import Detector

    detector = Detector.from_pretrained(run_folder, device="cpu")
    assert detector.checkpoint == str(run_folder / "best")
    described = f"{run_folder / 'best'} (the best checkpoint of the training run {run_folder})"
    assert detector.loaded_from == described
    assert load_detector(str(run_folder)).checkpoint == detector.checkpoint  # the demo
    synthetic_pair(1, (40, 30))[0].save(tmp_path / "photo.png")
    assert main(["predict", str(tmp_path / "photo.png"), "--checkpoint", str(run_folder), "--out",
                 str(tmp_path / "pred"), "--device", "cpu"]) == 0
    assert f"checkpoint: {detector.loaded_from}" in capsys.readouterr().err
    assert json.loads((tmp_path / "pred" / "photo.json").read_text())["checkpoint"] == detector.checkpoint
    assert main(["push", "model", str(run_folder), "--repo-id", "someone/x", "--dry-run",
                 "--out", str(tmp_path / "staged")]) == 0
    assert f"publishing {run_folder / 'best'}" in capsys.readouterr().out
    assert (tmp_path / "staged" / "model.safetensors").is_file()
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="without best/ yet"):
        Detector.from_pretrained(unfinished)


def test_missing_local_paths_fail_at_once_and_offline_says_so(tmp_path, monkeypatch):
    from diffseg30k.detector import Detector
    from diffseg30k.models.registry import build_model

    started = time.perf_counter()
    for source in ("./runs/nothing", str(tmp_path / "nothing"), "runs/a/b"):
        with pytest.raises(FileNotFoundError, match="no such folder"):
            Detector.from_pretrained(source)
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1 is set.*hf download nvidia/mit-b0"):
        build_model("segformer-b0")  # tests run with HF_HUB_OFFLINE=1
    with pytest.raises(FileNotFoundError, match="no such folder"):
        build_model("segformer-b0", pretrained=str(tmp_path / "weights"))
    import diffseg30k

    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)  # "data/diffseg30k" where data/ exists: a local path, never a Hub lookup
    with pytest.raises(ValueError, match="data/diffseg30k: no such file or folder$"):
        diffseg30k.load_benchmark("data/diffseg30k")
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE=1 is set"):
        diffseg30k.load_benchmark("someone/not-cached")
    assert time.perf_counter() - started < 20  # no Hub retries


def test_convert_extra_real_missing_folder_exits_2_and_hints_name_flags(tmp_path, capsys):
    write_synthetic_release(tmp_path / "rel", num=3)
    source = str(tmp_path / "rel" / "train_copy")
    for policy in ("raise", "skip"):
        assert main(["convert", source, "--out", str(tmp_path / "o"), "--extra-real", str(tmp_path / "nope"),
                     "--on-error", policy, "--quiet"]) == 2
        assert "--extra-real: no such folder" in capsys.readouterr().err
    assert main(["convert", source, "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert main(["convert", source, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_weights_and_staged_files_get_normal_permissions(run_folder, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    wanted = 0o666 & ~umask
    for path in [*(run_folder / "best").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & wanted == wanted, path


def test_generate_summary_mentions_failures_only_when_there_are_some(tmp_path, capsys):
    assert main(["generate", "--profile", "mini", "--num-images", "1", "--editors", "sd2", "--size", "64",
                 "--out", str(tmp_path / "gen"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "failures.jsonl" not in out and "none skipped" in out


def test_one_thread_rule(monkeypatch):
    from diffseg30k import threads

    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    assert (threads.torch_threads(1), threads.loader_workers(1)) == (1, 2)  # 1 thread + workers
    assert (threads.torch_threads(2), threads.loader_workers(2)) == (1, 1)
    monkeypatch.setattr(threads, "available_cpus", lambda: 16)
    assert (threads.torch_threads(2), threads.loader_workers(2)) == (4, 8)


def test_train_picks_its_threads_by_the_rule(monkeypatch, tmp_path):
    import torch

    from diffseg30k import threads
    from diffseg30k.data.synthetic import synthetic_dataset
    from diffseg30k.train import TrainConfig, train

    calls = []
    monkeypatch.setattr(threads, "torch_threads", lambda local=1: calls.append(local) or 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        train(TrainConfig(dataset=synthetic_dataset(4, (48, 48), seed=1), out=tmp_path, model="fcn8s-tiny",
                          max_steps=1, crop_size=32, batch_size=2, eval_split=None, save_every=0,
                          num_workers=0, progress=False, log_with="none"))
    finally:
        torch.set_num_threads(before)
    assert calls == [1]


def test_default_outputs_are_ignored_by_git():
    probe = subprocess.run(["git", "check-ignore", "benchmark-quick/report.md", "benchmark-paper/x",
                            "runs/tiny/best/config.json", "demo-parquet/README.md", "predictions/a.json"],
                           cwd=ROOT, capture_output=True, text=True)
    if probe.returncode == 128:
        pytest.skip("not a git checkout")
    assert len(probe.stdout.split()) == 5, probe.stdout


def test_demo_examples_are_mini_data_with_their_ground_truth(tmp_path):
    from diffseg30k.demo import example_set
    from diffseg30k.labels import ID2LABEL, label_colors
    from diffseg30k.render import overlay

    examples = example_set(tmp_path)
    mini = [e for e in examples if e.truth]
    assert len(mini) == 2 and all(e.label.startswith("mini data: ") for e in mini)
    assert " + " in mini[0].label  # the first is a multi-generator edit
    for example in mini:
        named = {n.strip() for n in example.label[len("mini data: "):].split(" edits on ")[0].split("+")}
        image = np.asarray(Image.open(example.image).convert("RGB"))
        truth = np.asarray(Image.open(example.truth).convert("RGB"))
        assert truth.shape == image.shape and not np.array_equal(truth, image)
        # the truth overlay is the image tinted where the release's mask says, in each named colour
        for name in named:
            label_id = next(i for i, n in ID2LABEL.items() if n == name)
            tinted = overlay(image, np.full(image.shape[:2], label_id, np.uint8), label_colors(ID2LABEL))
            assert (np.abs(truth.astype(int) - tinted.astype(int)).max(axis=2) <= 1).any(), name
    assert any("unedited" in e.label and e.truth is None for e in examples)


def test_demo_does_not_import_the_publishing_package():
    code = ("import sys, diffseg30k.demo; bad = [m for m in sys.modules if m.startswith('diffseg30k.hub')];"
            " print(bad); sys.exit(1 if bad else 0)")
    probe = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert probe.returncode == 0, probe.stdout + probe.stderr
