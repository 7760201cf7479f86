"""The generation orchestration (mini profile): release layout, exact labels, resume, failures, CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffseg30k.generation import pipeline as gp
from diffseg30k.generation.mini import build_mini_release, read_metadata
from diffseg30k.labels import GENERATOR_BY_NAME

EDITORS = ("sd2", "sdxl", "flux")
ARGS = dict(profile="mini", num_images=6, seed=3, size=64, editors=EDITORS, progress=False)


def _digest(root: Path) -> dict[str, str]:
    """sha256 of every output file (images, masks, metadata, failures)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return gp.generate(gp.GenerationConfig(out=tmp_path_factory.mktemp("ref") / "out", **ARGS))


def test_release_layout_metadata_and_exact_labels(reference: Path):
    rows = read_metadata(reference)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows) and len(rows) >= 4
    images = sorted(p.name for p in reference.glob("*.image.png"))
    assert images == [f"{r['id']}.image.png" for r in rows]
    for row in rows:
        image = Image.open(reference / f"{row['id']}.image.png")
        mask = np.asarray(Image.open(reference / f"{row['id']}.mask.png"))
        assert image.mode == "RGB" and image.size == (64, 64) and mask.shape == (64, 64)
        ids = {GENERATOR_BY_NAME[t["generator"]].id for t in row["turns"]}
        assert set(np.unique(mask)) <= {0} | ids
        assert GENERATOR_BY_NAME[row["turns"][-1]["generator"]].id in np.unique(mask)  # last turn on top
        assert row["edited_fraction"] == pytest.approx(float((mask > 0).mean()), abs=1e-6)
        assert max(t["mask_area"] for t in row["turns"]) <= row["edited_fraction"] + 1e-6
        assert row["base"] in ("real", "ai") and (row["base_generator"] is None) == (row["base"] == "real")
        assert len({t["generator"] for t in row["turns"]}) == len(row["turns"]) <= 3
        assert (row["base_backend"] is None) == (row["base"] == "real")
        for turn in row["turns"]:
            assert turn["editor"] in EDITORS and turn["edit_type"] in ("attribute", "addition", "removal")
            assert turn["editor_backend"].startswith("mini stand-in: classical content")
            assert turn["prompt"] and turn["quality"] >= 3 and isinstance(turn["seed"], int)
    finished = [d for d in (reference / ".work").iterdir() if (d / "done.json").is_file()]
    assert finished and not [p for d in finished for p in d.glob("*.png")]  # finished: only JSON records
    assert json.loads((reference / "generation.json").read_text())["seed"] == 3


def test_the_data_converter_reads_the_output(reference: Path):
    from diffseg30k.data.release import scan_sources

    scanned = scan_sources([reference])
    assert not scanned.problems
    entries = {e.id: e for e in scanned.entries}
    rows = read_metadata(reference)
    assert sorted(entries) == [r["id"] for r in rows]
    for row in rows:
        meta = entries[row["id"]].metadata
        assert meta["base"] == row["base"] and meta["base_source"] == row["base_source"]
        assert [t["generator"] for t in meta["turns"]] == [t["generator"] for t in row["turns"]]


def test_the_dataset_card_says_the_mini_data_is_a_stand_in(reference: Path, tmp_path: Path):
    from diffseg30k.data.convert import convert

    convert([reference], tmp_path / "converted", progress=False)
    card = (tmp_path / "converted" / "README.md").read_text()
    assert "DiffSeg30k *mini* stand-in" in card and "no diffusion model runs" in card
    assert "COCO licence" not in card and "## Labels" in card and "## Citation" in card


def test_rerun_with_same_arguments_changes_nothing(reference: Path):
    before = _digest(reference)
    gp.generate(gp.GenerationConfig(out=reference, **ARGS))
    assert _digest(reference) == before


def test_other_arguments_do_not_mix_into_an_existing_output(reference: Path):
    with pytest.raises(ValueError, match=r"other arguments \(seed\)"):
        gp.generate(gp.GenerationConfig(out=reference, **{**ARGS, "seed": 4}))


def test_injected_interruption_then_resume_is_byte_identical(reference: Path, tmp_path: Path, monkeypatch):
    out, calls = tmp_path / "out", {"n": 0}
    original = gp.GenerationRun.edit

    def flaky_edit(self, store, turn):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, store, turn)

    monkeypatch.setattr(gp.GenerationRun, "edit", flaky_edit)
    with pytest.raises(KeyboardInterrupt):
        gp.generate(gp.GenerationConfig(out=out, **ARGS))
    assert not (out / "metadata.jsonl").exists()
    monkeypatch.setattr(gp.GenerationRun, "edit", original)
    gp.generate(gp.GenerationConfig(out=out, **ARGS))
    assert _digest(out) == _digest(reference)


def test_sigkill_then_resume_is_byte_identical(reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    code = ("import torch; from diffseg30k.generation.pipeline import GenerationConfig, generate; "
            f"generate(GenerationConfig(out={str(out)!r}, **{ARGS!r}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and child.poll() is None and not list(out.glob(".work/*/turn0.edit.json")):
        time.sleep(0.05)
    killed = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert killed, "the child finished before it could be killed"
    assert not (out / "metadata.jsonl").exists()
    gp.generate(gp.GenerationConfig(out=out, **ARGS))
    assert _digest(out) == _digest(reference)
    assert not [p for p in out.rglob("*.tmp")]


def test_accelerate_launch_two_processes_gives_the_single_process_output(reference: Path, tmp_path: Path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "diffseg30k",
               "generate", "--num-images", "6", "--seed", "3", "--size", "64", "--editors", ",".join(EDITORS),
               "--out", str(out), "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("samples in") == 1  # the summary comes from the main process only
    assert _digest(out) == _digest(reference)


def _photo_like(height: int, width: int) -> np.ndarray:
    """Smooth colour gradients with mild texture (pure noise would fail the quality filter's checks)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    texture = np.random.default_rng(0).normal(0, 8, (height, width))
    base = np.stack([60 + 150 * yy, 80 + 120 * xx, 200 - 120 * yy * xx], axis=-1) + texture[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


def test_bad_sources_are_logged_and_skipped(tmp_path: Path, caplog):
    source = tmp_path / "photos"
    source.mkdir()
    Image.fromarray(_photo_like(90, 120)).save(source / "b_good.png")
    Image.new("RGB", (10, 12)).save(source / "c_small.png")
    (source / "a_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="diffseg30k.generation"):
        gp.generate(gp.GenerationConfig(out=out, profile="mini", num_images=3, size=64, editors=("sd2",),
                                        source=source, real_fraction=1.0, progress=False))
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    reasons = {Path(f["source"]).name: f["reason"] for f in failures}
    assert set(reasons) == {"a_corrupt.png", "c_small.png"}
    assert "not an image file" in reasons["a_corrupt.png"] and "too small" in reasons["c_small.png"]
    assert [r["base_source"] for r in read_metadata(out)] == [str(source / "b_good.png")]
    assert "a_corrupt.png" in caplog.text and "c_small.png" in caplog.text


def test_no_object_and_low_quality_samples_are_logged_and_left_out(tmp_path: Path, monkeypatch):
    from diffseg30k.generation.quality import QualityResult, StatisticsQualityScorer
    from diffseg30k.generation.regions import ShapeProposer

    original, calls = ShapeProposer.propose, []

    def propose(self, image, rng):  # the first sample's image shows no object
        calls.append(1)
        return [] if len(calls) == 1 else original(self, image, rng)

    monkeypatch.setattr(ShapeProposer, "propose", propose)
    monkeypatch.setattr(StatisticsQualityScorer, "score",
                        lambda self, image, mask: QualityResult(2.0, "the edge of the region is visible"))
    out = gp.generate(gp.GenerationConfig(out=tmp_path / "out", profile="mini", num_images=3, size=64,
                                          editors=("sd2",), progress=False))
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 3 and not read_metadata(out) and not list(out.glob("*.png"))
    rejected = [f for f in failures if f["status"] == "rejected"]
    assert rejected and all("quality 2.0: the edge of the region is visible" in f["reason"] for f in rejected)
    assert [f["stage"] for f in failures].count("regions") == 1
    assert "no usable object region" in next(f["reason"] for f in failures if f["stage"] == "regions")


def test_cli_generate_records_the_lora_variant_as_sdxl(tmp_path: Path, capsys):
    from diffseg30k.cli import main

    out = tmp_path / "cli"
    argv = ["generate", "--num-images", "3", "--size", "64", "--editors", "sdxl-lora,sd2", "--seed", "1",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "samples in" in capsys.readouterr().out
    turns = [t for r in read_metadata(out) for t in r["turns"]]
    assert {t["editor"] for t in turns} <= {"sdxl-lora", "sd2"}
    assert all(t["generator"] == "sdxl" for t in turns if t["editor"] == "sdxl-lora")
    assert main(["generate", "--editors", "dalle", "--out", str(tmp_path / "x")]) == 2
    assert main(["generate", "--captions", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "z")]) == 2
    assert main(["generate", "--editor-option", "oops", "--out", str(tmp_path / "y")]) == 2


def test_mini_release_is_cached(monkeypatch):
    first = build_mini_release(num=2, seed=5, size=64, editors=["sd2"])
    stamp = (first / "metadata.jsonl").stat().st_mtime_ns
    monkeypatch.setattr(gp, "generate", lambda *a, **k: pytest.fail("regenerated a complete release"))
    assert build_mini_release(num=2, seed=5, size=64, editors=["sd2"]) == first
    assert (first / "metadata.jsonl").stat().st_mtime_ns == stamp


@pytest.mark.skipif(importlib.util.find_spec("diffseg30k.generation.editors.glide") is None,
                    reason="the GLIDE adapter is not installed")
@pytest.mark.parametrize("profile", ["mini", "tiny"])
def test_glide_runs_in_the_pipeline_like_any_editor(tmp_path: Path, profile: str):
    out = gp.generate(gp.GenerationConfig(out=tmp_path / "g", profile=profile, num_images=4, seed=2, size=64,
                                          editors=("glide", "sd2"), real_fraction=1.0, progress=False,
                                          quality_threshold=0))  # tiny random editors paint noise
    turns = [t for r in read_metadata(out) for t in r["turns"]]
    assert any(t["generator"] == "glide" for t in turns)
    backends = {t["editor"]: t["editor_backend"] for t in turns}
    if profile == "tiny":  # the real diffusers/GLIDE code paths with tiny random weights
        assert backends.get("sd2", "SD2Editor (tiny random weights)") == "SD2Editor (tiny random weights)"
        assert backends["glide"] == "GlideEditor (tiny random weights)"
    else:
        assert "UNet2DModel" in backends["glide"] and "no diffusion step" in backends["glide"]


def test_a_16_bit_source_photo_is_scaled_not_saturated(tmp_path: Path):
    source = tmp_path / "photos"
    source.mkdir()
    ramp = np.linspace(0, 65535, 96 * 96).reshape(96, 96).astype(np.uint16)
    Image.fromarray(ramp).save(source / "deep.png")  # a 16-bit greyscale photo (mode I;16)
    config = gp.GenerationConfig(out=tmp_path / "out", profile="mini", num_images=1, size=64,
                                 editors=("sd2",), source=source, real_fraction=1.0, progress=False)
    run = gp.GenerationRun(config, gp.plans_for(config), "cpu")
    run.real_base(run.stores[0])
    base = np.asarray(run.stores[0].load_image("base.png"), dtype=np.float64)
    assert abs(base.mean() - 127.5) < 15 and (base >= 250).mean() < 0.1


def test_a_sample_failing_while_it_is_published_leaves_no_half_in_the_release(tmp_path: Path, monkeypatch):
    import shutil

    copy = shutil.copyfile

    def disk_full_on_images(src, dst, *args, **kwargs):  # publishing a final image fails
        if Path(src).parent.name.isdigit() and Path(src).name in {"turn0.png", "turn1.png", "turn2.png"}:
            raise OSError(28, "No space left on device")
        return copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(gp.shutil, "copyfile", disk_full_on_images)
    config = gp.GenerationConfig(out=tmp_path / "out", **{**ARGS, "num_images": 2})
    with pytest.raises(OSError, match="No space left"):  # the run stops: no sample is marked failed
        gp.generate(config)
    out = tmp_path / "out"
    assert not list(out.glob("*.mask.png")) and not list(out.glob("*.image.png"))
    assert not list(out.glob(".work/*/status.json"))
    monkeypatch.undo()  # space freed: the rerun finishes every sample
    gp.generate(config)
    assert len(list(out.glob("*.mask.png"))) == len(read_metadata(out)) > 0


def test_local_workers_write_the_same_bytes_as_one_process(reference: Path, tmp_path: Path):
    shared = gp.generate(gp.GenerationConfig(out=tmp_path / "two", workers=2, **ARGS))
    assert _digest(shared) == _digest(reference)
    assert not (shared / ".workers-config.json").exists()
    # each worker did its own share: the planned samples split between them by index
    assert len(read_metadata(shared)) == len(read_metadata(reference))
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        gp.GenerationConfig(out=tmp_path / "bad", workers=0, **ARGS)
