"""Training: every tiny detector learns; exact resume; faults (NaN, SIGKILL); options; CLI."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffseg30k.data.synthetic import synthetic_dataset
from diffseg30k.train import TrainConfig, TrainingDiverged, train

FAST = dict(crop_size=48, batch_size=4, num_workers=0, threads=1, progress=False, log_with="none")


@pytest.fixture(scope="module")
def data() -> datasets.DatasetDict:
    return datasets.DatasetDict(train=synthetic_dataset(12, (64, 64), seed=1),
                                validation=synthetic_dataset(4, (70, 54), seed=2))


@pytest.mark.parametrize("name", ["segformer-tiny", "deeplabv3plus-tiny", "fcn8s-tiny"])
def test_every_tiny_detector_trains_and_its_loss_falls(name, data, tmp_path):
    best = train(TrainConfig(dataset=data, out=tmp_path, model=name, task="semantic", max_steps=60,
                             lr=3e-3, eval_every=0, save_every=0, **FAST))
    info = json.loads((best / "diffseg30k.json").read_text())
    assert info["loss_last"] < 0.8 * info["loss_first"], info
    assert info["task"] == "semantic" and info["step"] == 60
    assert 0.0 <= info["eval"]["semantic_miou"] <= 1.0 and "binary_bf1" in info["eval"]
    assert (best / "model.safetensors").is_file() and (best / "preprocessor_config.json").is_file()
    assert (tmp_path / "checkpoints" / "step_60" / "trainer_state.json").is_file()


def _weights(checkpoint) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def test_resume_continues_exactly(data, tmp_path):
    common = dict(dataset=data, model="segformer-tiny", max_steps=6, save_every=3, eval_split=None,
                  augment="robust", **FAST)
    train(TrainConfig(out=tmp_path / "straight", **common))
    train(TrainConfig(out=tmp_path / "stopped", stop_after=3, **common))
    assert not (tmp_path / "stopped" / "checkpoints" / "step_6").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        train(TrainConfig(out=tmp_path / "stopped", **common))
    train(TrainConfig(out=tmp_path / "stopped", resume=True, **{**common, "num_workers": 2}))
    straight = _weights(tmp_path / "straight" / "checkpoints" / "step_6")
    resumed = _weights(tmp_path / "stopped" / "checkpoints" / "step_6")
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    state = json.loads((tmp_path / "stopped" / "checkpoints" / "step_6" / "trainer_state.json").read_text())
    assert state["step"] == 6


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    config = TrainConfig(dataset=data, out=tmp_path, model="fcn8s-tiny", max_steps=50, save_every=1,
                         optimizer="sgd", lr=1e30, eval_split=None, **FAST)
    with pytest.raises(TrainingDiverged, match="Last good checkpoint"):
        train(config)
    checkpoints = sorted((tmp_path / "checkpoints").glob("step_*"))
    assert checkpoints, "a checkpoint from before the divergence is kept"
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))
    for tensor in _weights(checkpoints[-1]).values():
        assert torch.isfinite(tensor.float()).all()


def test_holdout_drops_images_of_held_out_generators(data):
    from diffseg30k.training.sources import drop_holdout

    kept = drop_holdout(data["train"], ("flux", "sd2"))
    assert 0 < len(kept) < len(data["train"])
    assert all(not {"flux", "sd2"} & set(models) for models in kept["models"])
    with pytest.raises(ValueError, match="unknown generator"):
        drop_holdout(data["train"], ("dalle",))


def test_extra_real_images_are_background_negatives(data, tmp_path):
    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.training.data import CropDataset, list_images

    (tmp_path / "real").mkdir()
    for k in range(3):
        synthetic_pair(50 + k, (40, 40), edited=False)[0].save(tmp_path / "real" / f"{k}.jpg")
    extra = list_images(tmp_path / "real")
    dataset = CropDataset(data["train"], 32, "binary", 2, seed=0, extra_real=extra)
    assert len(dataset) == len(data["train"]) + 3
    pixels, labels = dataset[(len(dataset) - 1, 0)]
    assert pixels.shape == (32, 32, 3) and set(np.unique(labels)) <= {0, 255}
    best = train(TrainConfig(dataset=data, out=tmp_path / "out", model="fcn8s-tiny", task="binary",
                             max_steps=2, extra_real=tmp_path / "real", eval_split=None, **FAST))
    assert json.loads((best / "diffseg30k.json").read_text())["train_images"] == len(dataset)


def test_binary_task_collapses_semantic_masks(data):
    from diffseg30k.training.data import CropDataset

    dataset = CropDataset(data["train"], 64, "binary", 2, seed=0)
    values = set()
    for index in range(4):
        values |= set(np.unique(dataset[(index, index)][1]).tolist())
    assert values <= {0, 1, 255} and 1 in values


def test_stream_sampler_shards_and_resumes_exactly():
    from diffseg30k.training.data import StreamBatchSampler

    full = list(StreamBatchSampler(10, 2, seed=3, start=0, stop=8, rank=0, world=1))
    epoch = [i for batch in full[:5] for i, _ in batch]
    assert sorted(epoch) == list(range(10))
    tail = list(StreamBatchSampler(10, 2, seed=3, start=5, stop=8))
    assert tail == full[5:]
    rank0 = list(StreamBatchSampler(10, 1, seed=3, start=0, stop=5, rank=0, world=2))
    rank1 = list(StreamBatchSampler(10, 1, seed=3, start=0, stop=5, rank=1, world=2))
    assert sorted(b[0][0] for b in rank0 + rank1) == list(range(10))


def test_partial_png_decoding_equals_full_decoding(data, tmp_path):
    import io

    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.data.transforms import make_augment, train_crop
    from diffseg30k.io import open_image
    from diffseg30k.training.data import CropDataset, decode_rows

    image = synthetic_pair(5, (70, 90))[0]
    for fmt in ("PNG", "JPEG"):  # PNG: only the rows above the crop; other formats whole
        buf = io.BytesIO()
        image.save(buf, format=fmt)
        top = decode_rows(open_image(buf.getvalue(), load=False), 33, "x")
        assert top.height == (33 if fmt == "PNG" else 90)
        assert np.array_equal(np.asarray(top)[:33], np.asarray(open_image(buf.getvalue()))[:33])
    with pytest.raises(ValueError, match="corrupt"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        decode_rows(open_image(buf.getvalue()[:400], load=False), 80, "cut.png")
    # The dataset (lazy, partial decoding) gives exactly what train_crop gives on decoded images.
    dataset = CropDataset(data["train"], 40, "semantic", 9, seed=3, augment=make_augment("robust"))
    for index, position in ((0, 0), (5, 17), (11, 4)):
        row = data["train"][index]
        expected = train_crop(row["image"], np.asarray(row["mask"]), 40,
                              np.random.default_rng([3, position]), make_augment("robust"))
        got = dataset[(index, position)]
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_train_crop_pads_small_images_and_robust_augment_distorts():
    from diffseg30k.data.synthetic import synthetic_pair
    from diffseg30k.data.transforms import make_augment, train_crop

    image, mask = synthetic_pair(2, (30, 20))
    pixels, labels = train_crop(image, mask, 32, np.random.default_rng(0))
    assert pixels.shape == (32, 32, 3) and labels.shape == (32, 32)
    assert (labels[20:] == 255).all() and (labels[:, 30:] == 255).all()
    big, big_mask = synthetic_pair(3, (96, 96))
    plain = [train_crop(big, big_mask, 48, np.random.default_rng(s)) for s in range(6)]
    augment = make_augment("robust")
    robust = [train_crop(big, big_mask, 48, np.random.default_rng(s), augment) for s in range(6)]
    assert all(p[0].shape == r[0].shape == (48, 48, 3) for p, r in zip(plain, robust))
    assert any(not np.array_equal(p[0], r[0]) for p, r in zip(plain, robust))
    again = train_crop(big, big_mask, 48, np.random.default_rng(4), make_augment("robust"))
    assert np.array_equal(again[0], robust[4][0])  # a pure function of the seed
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augment("heavy")


def test_one_process_can_train_with_different_mixed_precision(data, tmp_path):
    short = {**FAST, "max_steps": 2, "eval_split": None}
    first = train(TrainConfig(dataset=data, out=tmp_path / "bf16", mixed_precision="bf16", **short))
    # --resume with nothing to resume starts at step 0
    second = train(TrainConfig(dataset=data, out=tmp_path / "fp32", resume=True, **short))
    assert first.is_dir() and second.is_dir()


def test_incomplete_checkpoints_are_never_picked(tmp_path):
    from diffseg30k.training.checkpoints import latest_checkpoint

    root = tmp_path / "checkpoints"
    (root / "step_4").mkdir(parents=True)
    (root / "step_4" / "trainer_state.json").write_text(json.dumps({"step": 4}))
    (root / ".step_9.tmp").mkdir()  # a save killed before its rename
    (root / ".step_9.tmp" / "model.safetensors").write_bytes(b"truncated")
    (root / "step_12").mkdir()  # no trainer_state.json: not complete
    assert latest_checkpoint(tmp_path) == root / "step_4"


def test_checkpoints_hold_no_pickle_and_a_truncated_one_falls_back(data, tmp_path, capsys):
    """Issue 11 items 4 and 12: safetensors + JSON only; a truncated newest checkpoint is named and the
    previous complete one resumed, giving the same weights as a run that never stopped."""
    common = dict(dataset=data, model="segformer-tiny", max_steps=6, save_every=2, keep_checkpoints=3,
                  eval_split=None, **FAST)
    train(TrainConfig(out=tmp_path / "straight", **common))
    train(TrainConfig(out=tmp_path / "stopped", stop_after=4, **common))
    step4 = tmp_path / "stopped" / "checkpoints" / "step_4"
    names = sorted(p.name for p in step4.iterdir())
    assert names == ["model.safetensors", "optimizer.json", "optimizer.safetensors", "random_states_0.json",
                     "scheduler.json", "trainer_state.json"]
    weights = step4 / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    train(TrainConfig(out=tmp_path / "stopped", resume=True, **common))
    out = capsys.readouterr().out
    assert f"checkpoint {step4} cannot be resumed from: {weights}: not a readable safetensors file" in out
    assert "falling back to " + str(step4.parent / "step_2") in out
    straight = _weights(tmp_path / "straight" / "checkpoints" / "step_6")
    resumed = _weights(tmp_path / "stopped" / "checkpoints" / "step_6")
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key


def test_a_pickled_optimizer_state_is_never_loaded(data, tmp_path):
    from diffseg30k.training.state import CheckpointError

    common = dict(dataset=data, model="segformer-tiny", max_steps=4, save_every=2, eval_split=None, **FAST)
    train(TrainConfig(out=tmp_path, stop_after=2, **common))
    step2 = tmp_path / "checkpoints" / "step_2"
    for name in ("optimizer.json", "optimizer.safetensors"):
        (step2 / name).unlink()
    (step2 / "optimizer.bin").write_bytes(b"\x80\x04cos\nsystem\n(S'touch pwned'\ntR.")  # a hostile pickle
    with pytest.raises(CheckpointError, match="optimizer.bin: not a plain tensor file .*it was not loaded"):
        train(TrainConfig(out=tmp_path, resume=True, **common))
    assert not (tmp_path / "pwned").exists()


def test_a_second_run_on_one_out_is_refused(data, tmp_path):
    from diffseg30k.outputs import OutputBusy, output_lock

    with output_lock(tmp_path / "run", "another train"), pytest.raises(OutputBusy, match="another train"):
        train(TrainConfig(dataset=data, out=tmp_path / "run", max_steps=1, eval_split=None, **FAST))
    assert not (tmp_path / "run").exists()


def test_init_from_starts_the_semantic_run_from_the_binary_detector(data, tmp_path):
    common = dict(dataset=data, model="fcn8s-tiny", eval_split=None, save_every=0, **FAST)
    binary = train(TrainConfig(out=tmp_path / "binary", task="binary", max_steps=3, **common))
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.warm_start import warm_start

    fresh = build_model("fcn8s-tiny", task="semantic", from_scratch=True, crop_size=48)
    summary = warm_start(fresh, str(binary))
    saved, own = _weights(binary), fresh.state_dict()
    copied = [k for k in own if k in saved and saved[k].shape == own[k].shape]
    assert copied and all(torch.equal(own[k], saved[k]) for k in copied)
    afresh = [k for k in own if k not in copied]
    assert afresh and all(k in summary for k in afresh)       # the 9-class classifier starts afresh
    # a one-step run from it moves the learned weights away from the binary ones only by that step
    # (BatchNorm's running statistics move more: they are not learned)
    semantic = train(TrainConfig(out=tmp_path / "semantic", task="semantic", max_steps=1, lr=1e-6,
                                 init_from=str(binary), **common))
    after = _weights(semantic)
    assert max(float((after[k].float() - saved[k].float()).abs().max()) for k in copied
               if saved[k].is_floating_point() and "running_" not in k) < 1e-3
    with pytest.raises(ValueError, match="a warm start needs the same one"):
        other = build_model("segformer-tiny", task="semantic", from_scratch=True, crop_size=48)
        warm_start(other, str(binary))
