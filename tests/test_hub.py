"""Hub publishing: model card contents, the dry-run folder, pulls by Hub id, fast clear push failures."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from diffseg30k.cli import main
from diffseg30k.data.synthetic import synthetic_pair, write_synthetic_release
from diffseg30k.hub import DATASET_ID, HubError, check_hub_access, publish, stage_space_repo
from diffseg30k.io import sha256_file
from diffseg30k.labels import COLORS, DISPLAY_NAMES, ID2LABEL

REPO = "someone/diffseg30k-tiny"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real exported segformer-tiny checkpoint whose eval report is DiffSegMetric on synthetic pairs."""
    import torch

    from diffseg30k.detector import Detector
    from diffseg30k.metrics import DiffSegMetric
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector
    from diffseg30k.training.evaluation import scalar_metrics

    torch.manual_seed(0)
    model = build_model("segformer-tiny", crop_size=64)
    detector = Detector(model, device="cpu", fuse=False)  # fusing would change the saved weights
    metric = DiffSegMetric()
    for seed in range(3):
        image, mask = synthetic_pair(seed, (64, 48))
        result = detector(image)
        metric.update(result.label_map, mask, score=result.edited_fraction)
    report = scalar_metrics(metric.compute())
    path = tmp_path_factory.mktemp("ckpt") / "best"
    export_detector(model, path, {"training": {"dataset": DATASET_ID, "eval_split": "validation",
                                                        "model": "segformer-tiny", "max_steps": 0},
                                           "step": 0, "eval": report})
    return path


@pytest.fixture(scope="module")
def dry_run(checkpoint, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("staged") / "repo"
    extra = checkpoint.parent / "with-pickles"
    shutil.copytree(checkpoint, extra)
    (extra / "optimizer.pt").write_bytes(b"pickled optimizer state")
    (extra / "pytorch_model.bin").write_bytes(b"pickled weights")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["push", "model", str(extra), "--repo-id", REPO, "--dry-run", "--out", str(out),
                     "--revision", "v1"])
    assert code == 0
    return out, stdout.getvalue()


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_dry_run_lists_every_file_with_size_and_sha256(dry_run):
    out, stdout = dry_run
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in files} == {"README.md", "config.json", "model.safetensors", "diffseg30k.json",
                                       "preprocessor_config.json"}
    for path in files:
        assert f"{path.stat().st_size:>12,}  {sha256_file(path)}  {path.name}" in stdout
    assert "left out: optimizer.pt: not one of the files a model repository publishes" in stdout
    assert "pytorch_model.bin" in stdout and not (out / "pytorch_model.bin").exists()
    assert "dry run: would upload to model someone/diffseg30k-tiny (branch v1), public" in stdout


def test_model_card_yaml_and_model_index_come_from_the_eval_report(dry_run, checkpoint):
    from huggingface_hub import ModelCard

    out, _ = dry_run
    meta = front_matter(out / "README.md")
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "image-segmentation"
    assert meta["license"] == "apache-2.0"
    assert DATASET_ID in meta["datasets"]
    assert {"diffseg30k", "aigc-detection", "segformer"} <= set(meta["tags"])
    report = json.loads((checkpoint / "diffseg30k.json").read_text())["eval"]
    found = {}
    for entry in meta["model-index"][0]["results"]:
        assert entry["dataset"]["type"] == DATASET_ID and entry["dataset"]["split"] == "validation"
        for metric in entry["metrics"]:
            found[metric["name"]] = metric["value"]
    assert found["semantic mIoU"] == pytest.approx(round(report["semantic_miou"], 4))
    assert found["binary boundary F1"] == pytest.approx(round(report["binary_bf1"], 4))
    assert found["image AP"] == pytest.approx(round(report["image_ap"], 4))
    card = ModelCard.load(out / "README.md")
    assert card.data.eval_results and card.data.model_name == "diffseg30k-tiny"
    text = card.text
    assert f'Detector.from_pretrained("{REPO}")' in text
    for label_id, name in ID2LABEL.items():
        assert f"| {label_id} | {name} | {DISPLAY_NAMES[label_id]} | `{COLORS[label_id]}` |" in text
    palette = json.loads(text.split("```json\n")[1].split("```")[0])
    assert {int(k): tuple(v) for k, v in palette.items()} == COLORS


def test_dry_run_folder_loads_with_from_pretrained(dry_run, checkpoint):
    from diffseg30k.detector import Detector

    image, _ = synthetic_pair(5, (40, 56))
    original = Detector.from_pretrained(checkpoint, device="cpu")(image, return_probabilities=True)
    staged = Detector.from_pretrained(dry_run[0], device="cpu")(image, return_probabilities=True)
    assert staged.label_map.shape == (56, 40)
    assert np.array_equal(staged.label_map, original.label_map)
    assert np.allclose(staged.probabilities, original.probabilities, atol=1e-6)


def test_pull_by_hub_id_and_revision_from_the_hub_cache(dry_run):
    """The Hub code path of from_pretrained, served offline from a cache laid out as snapshot_download
    leaves it (refs/<revision> -> snapshots/<commit>)."""
    from huggingface_hub import constants

    from diffseg30k.detector import Detector

    repo = Path(constants.HF_HUB_CACHE) / "models--someone--diffseg30k-tiny"
    for ref, commit in (("main", "a" * 40), ("v1", "b" * 40)):
        shutil.copytree(dry_run[0], repo / "snapshots" / commit, dirs_exist_ok=True)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    image, _ = synthetic_pair(3, (32, 32))
    for revision in (None, "v1"):
        result = Detector.from_pretrained(REPO, revision=revision, device="cpu")(image)
        assert result.label_map.shape == (32, 32)
    with pytest.raises(Exception, match="(?i)offline|cache|not found|cannot"):
        Detector.from_pretrained("someone/not-cached", device="cpu")


def test_card_without_eval_report_and_invalid_checkpoints(checkpoint, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(checkpoint / name, bare / name)
    plan = publish("model", REPO, bare, out=tmp_path / "out", dry_run=True, license="mit")
    meta = front_matter(plan.folder / "README.md")
    assert "model-index" not in meta and meta["license"] == "mit"
    assert "No evaluation report was stored" in (plan.folder / "README.md").read_text()
    (bare / "model.safetensors").unlink()
    assert main(["push", "model", str(bare), "--repo-id", REPO, "--dry-run", "--out",
                 str(tmp_path / "x")]) == 2
    assert "no *.safetensors weights" in capsys.readouterr().err
    (bare / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(HubError, match="not a readable safetensors file"):
        publish("model", REPO, bare, out=tmp_path / "y", dry_run=True)
    assert main(["push", "model", str(checkpoint), "--repo-id", "no-slash", "--dry-run"]) == 2
    assert main(["push", "model", str(checkpoint), "--repo-id", REPO, "--dry-run", "--out",
                 str(tmp_path / "out")]) == 2
    assert "already exists (add --overwrite" in capsys.readouterr().err


def test_push_offline_fails_fast_and_clearly(checkpoint, tmp_path):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "diffseg30k", "push", "model", str(checkpoint), "--repo-id",
                           REPO], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert "HF_HUB_OFFLINE is set" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 60


def test_push_without_token_or_network_fails_clearly(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(HubError, match="no Hugging Face token"):
        check_hub_access()
    with socket.socket() as sock:  # a port with nothing listening: connection refused at once
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
    with pytest.raises(HubError, match="cannot reach"):
        check_hub_access("hf_not_a_real_token", timeout=5)

    class Reject(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Reject)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(HubError, match="token was rejected"):
            check_hub_access("hf_not_a_real_token", timeout=5)
    finally:
        server.shutdown()


def test_push_dataset_dry_run_copies_the_converted_folder(tmp_path, capsys):
    from diffseg30k.data.convert import convert

    release = write_synthetic_release(tmp_path / "raw", num=4, size=(32, 32))
    converted = tmp_path / "converted"
    convert([release], converted)
    out = tmp_path / "staged"
    assert main(["push", "dataset", str(converted), "--repo-id", "someone/ds", "--dry-run", "--out",
                 str(out)]) == 0
    stdout = capsys.readouterr().out
    source = sorted(p.relative_to(converted).as_posix() for p in converted.rglob("*")
                    if p.is_file() and not p.name.startswith("."))
    assert source == sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    for rel in source:
        assert f"{sha256_file(out / rel)}  {rel}" in stdout
        if rel != "README.md":
            assert sha256_file(out / rel) == sha256_file(converted / rel)
    assert 'load_dataset("someone/ds")' in (out / "README.md").read_text()
    assert main(["push", "dataset", str(tmp_path / "raw"), "--repo-id", "someone/ds", "--dry-run"]) == 2
    assert "not a converted dataset folder" in capsys.readouterr().err


def test_space_folder_bundles_package_and_checkpoint(checkpoint, tmp_path):
    from huggingface_hub import SpaceCard

    bundled = stage_space_repo(tmp_path / "space", checkpoint=str(checkpoint))
    for rel in ("app.py", "requirements.txt", "README.md", "diffseg30k/demo.py", "diffseg30k/labels.py",
                "checkpoint/model.safetensors", "checkpoint/config.json"):
        assert (bundled / rel).is_file(), rel
    assert not list(bundled.rglob("__pycache__"))
    card = SpaceCard.load(bundled / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert DATASET_ID in card.data.datasets
    linked = stage_space_repo(tmp_path / "linked", checkpoint=REPO)
    assert SpaceCard.load(linked / "README.md").data.models == [REPO]
    assert not (linked / "checkpoint").exists()
    probe = subprocess.run([sys.executable, "-c", "import diffseg30k.demo as d; print(d.__file__)"],
                           cwd=bundled, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).is_relative_to(bundled)


def test_space_requirements_cover_the_package_dependencies():
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["demo"]
    names = {re.split(r"[<>=\[ ]", spec)[0].lower().replace("_", "-") for spec in needed} - {"gradio"}
    requirements = (root / "spaces" / "requirements.txt").read_text()
    listed = {re.split(r"[<>=\[ ]", line)[0].lower().replace("_", "-")
              for line in requirements.splitlines() if line.strip() and not line.startswith("#")}
    assert names <= listed, names - listed



def test_binary_toolkit_architecture_card(tmp_path):
    """A binary DeepLabV3+ (a diffseg30k architecture, not stock transformers): library_name and labels."""
    from diffseg30k.detector import Detector
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    checkpoint = export_detector(build_model("deeplabv3plus-tiny", task="binary"), tmp_path / "ckpt",
                                 {"training": {"dataset": str(tmp_path / "local-data")},
                                  "eval": {"binary_miou": 0.5, "image_ap": 0.75, "num_images": 3.0}})
    plan = publish("model", REPO, checkpoint, out=tmp_path / "out", dry_run=True)
    meta = front_matter(plan.folder / "README.md")
    text = (plan.folder / "README.md").read_text()
    assert meta["library_name"] == "diffseg30k" and "binary-task" in meta["tags"]
    assert "datasets" not in meta  # trained on a local folder: the card names no Hub dataset
    results = meta["model-index"][0]["results"]
    assert {r["dataset"]["name"] for r in results} == {"DiffSeg30k-format local folder local-data"}
    assert sorted(m["name"] for r in results for m in r["metrics"]) == ["binary mIoU", "image AP"]
    assert "| 1 | edited | edited by any diffusion model | `(255, 255, 255)` |" in text
    assert "the local folder `local-data`, 3 images" in text
    assert Detector.from_pretrained(plan.folder, device="cpu").task == "binary"


def test_push_refuses_weights_that_do_not_match_the_config(checkpoint, tmp_path):
    """Weights missing a tensor, or shaped for another label set, would load half random: refused."""
    from safetensors.numpy import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    tensors = load_file(partial / "model.safetensors")
    dropped = sorted(tensors)[0]
    tensors.pop(dropped)
    save_file(tensors, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(HubError, match=f"weights do not match config.json \\(missing: {re.escape(dropped)}"):
        publish("model", REPO, partial, out=tmp_path / "out", dry_run=True)
    relabeled = tmp_path / "relabeled"
    shutil.copytree(checkpoint, relabeled)
    config = json.loads((relabeled / "config.json").read_text())
    config.update(id2label={"0": "background", "1": "edited"}, label2id={"background": 0, "edited": 1})
    (relabeled / "config.json").write_text(json.dumps(config))
    with pytest.raises(HubError, match=r"tensor shapes in the weights do not match config.json: \S+ \(w"):
        publish("model", REPO, relabeled, out=tmp_path / "out", dry_run=True)
    assert not (tmp_path / "out").exists()


def test_push_model_stages_an_allow_list_and_never_follows_links(checkpoint, tmp_path, capsys):
    """Tokens, notes and links to system files in a checkpoint folder are left out, each with a reason."""
    folder = tmp_path / "ck"
    shutil.copytree(checkpoint, folder)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (folder / "hf_token.txt").write_text("hf_abc")
    (folder / "credentials.json").write_text("{}")
    (folder / "notes.txt").symlink_to(secret)
    (folder / "extra.safetensors").symlink_to(folder / "model.safetensors")
    (folder / "sub").mkdir()
    (folder / "sub" / "more.safetensors").write_bytes(b"x")
    out = tmp_path / "staged"
    assert main(["push", "model", str(folder), "--repo-id", REPO, "--dry-run", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert sorted(p.name for p in out.rglob("*")) == ["README.md", "config.json", "diffseg30k.json",
                                                       "model.safetensors", "preprocessor_config.json"]
    for name in ("hf_token.txt", "credentials.json", "sub/more.safetensors"):
        assert f"left out: {name}: not one of the files a model repository publishes" in stdout
    for name in ("notes.txt", "extra.safetensors"):
        assert f"left out: {name}: symbolic link (not followed" in stdout
    assert "root:x" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_push_dataset_stages_the_converters_files_only(tmp_path, capsys):
    from diffseg30k.data.convert import convert

    converted = tmp_path / "converted"
    convert([write_synthetic_release(tmp_path / "raw", num=4, size=(32, 32))], converted, progress=False)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash")
    (converted / "NOTES.md").symlink_to(secret)
    (converted / "thesis.tex").write_text("draft")
    (converted / "data" / "extra.parquet").symlink_to(next((converted / "data").glob("*.parquet")))
    out = tmp_path / "staged"
    assert main(["push", "dataset", str(converted), "--repo-id", "someone/ds", "--dry-run", "--out",
                 str(out)]) == 0
    stdout = capsys.readouterr().out
    staged = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "NOTES.md" not in staged and "thesis.tex" not in staged and "data/extra.parquet" not in staged
    assert {"README.md", "id2label.json", "conversion.json"} <= set(staged)
    assert "left out: NOTES.md: symbolic link (not followed" in stdout
    assert "left out: data/extra.parquet: symbolic link" in stdout
    assert "left out: thesis.tex: not one of the files a dataset repository publishes" in stdout
    (converted / "README.md").rename(converted / "card.md")
    (converted / "README.md").symlink_to(converted / "card.md")
    assert main(["push", "dataset", str(converted), "--repo-id", "someone/ds", "--dry-run", "--out",
                 str(tmp_path / "staged2")]) == 2
    assert "README.md: is a symbolic link; links are never published" in capsys.readouterr().err


def test_missing_local_folder_is_named_before_any_network_check(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(HubError, match="missing-ckpt: not a folder"):
        publish("model", "user/repo", tmp_path / "missing-ckpt")
    with pytest.raises(HubError, match="nothing-here: not a folder"):
        publish("dataset", "user/data", tmp_path / "nothing-here", dry_run=True, out=tmp_path / "o")


def test_card_command_line_is_a_valid_predict_call(dry_run):
    import argparse
    import shlex

    from diffseg30k.cli import predict_cmd

    text = (dry_run[0] / "README.md").read_text()
    command = re.search(r"`(diffseg30k predict [^`]+)`", text).group(1)
    parser = argparse.ArgumentParser()
    predict_cmd.add_arguments(parser)
    args = parser.parse_args(shlex.split(command)[2:])  # exits (SystemExit) when a required option lacks
    assert args.checkpoint == REPO and args.images == ["photo.jpg"]


def test_space_checkpoint_that_is_neither_a_folder_nor_a_repo_id_is_refused(tmp_path):
    # a mistyped local path used to be linked in the Space card (and set as DIFFSEG_CHECKPOINT)
    with pytest.raises(HubError, match="missing/best: not a checkpoint folder or a Hub model id"):
        publish("space", "user/space", checkpoint=str(tmp_path / "missing" / "best"), dry_run=True,
                out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
