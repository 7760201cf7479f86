"""The Gradio demo served on 127.0.0.1 and driven with gradio_client: outputs, odd and bad inputs, queue."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from diffseg30k.cli import main  # noqa: E402
from diffseg30k.data.synthetic import synthetic_pair  # noqa: E402
from diffseg30k.demo import (  # noqa: E402
    CONCURRENCY,
    OVERLAY_ALPHA,
    QUEUE_SIZE,
    build_app,
    launch_kwargs,
    resolve_checkpoint,
)
from diffseg30k.io import normalize_image  # noqa: E402
from diffseg30k.labels import BINARY_COLORS, COLORS  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    import torch

    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("c") / "ckpt"
    return export_detector(build_model("segformer-tiny", crop_size=64), folder, {})


@pytest.fixture(scope="module")
def server(checkpoint):
    app = build_app(str(checkpoint))
    port = free_port()
    app.launch(**{**launch_kwargs("127.0.0.1", port), "prevent_thread_lock": True, "quiet": True})
    yield app, f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server[1], verbose=False)


def save(path: Path, image: Image.Image, fmt: str, **kwargs) -> Path:
    image.save(path, fmt, **kwargs)
    return path


def test_predict_endpoint_outputs(client, checkpoint, tmp_path):
    from diffseg30k.detector import Detector

    image, _ = synthetic_pair(11, (64, 48))
    path = save(tmp_path / "edited photo.png", image, "PNG")
    semantic, binary, table, verdict, mask_path, details = client.predict(handle_file(str(path)),
                                                                          api_name="/predict")
    # the page runs the fastest installed runtime (auto); the same runtime gives the same labels
    expected = Detector.from_pretrained(checkpoint, device="cpu", runtime=details["runtime"])(image)
    mask = Image.open(mask_path)
    assert mask.mode == "P" and Path(mask_path).name == "edited photo_diffseg30k_mask.png"
    labels = np.asarray(mask)
    assert np.array_equal(labels, expected.label_map)
    pixels = np.asarray(image).astype(np.float32)
    for overlay_path, label_map, colors in ((semantic, labels, COLORS),
                                            (binary, (labels > 0).astype(np.uint8), BINARY_COLORS)):
        shown = np.asarray(Image.open(overlay_path).convert("RGB")).astype(np.float32)
        assert shown.shape == (48, 64, 3)
        lut = np.array([colors.get(i, (0, 0, 0)) for i in range(256)], np.float32)
        blend = (1 - OVERLAY_ALPHA) * pixels + OVERLAY_ALPHA * lut[label_map]
        want = np.where((label_map > 0)[..., None], blend, pixels)
        assert np.abs(shown - want).max() <= 1
    assert details["width"] == 64 and details["height"] == 48
    assert details["is_edited"] == expected.is_edited
    assert [row[0] for row in table["data"]] == sorted(expected.generators,
                                                       key=lambda n: -expected.generators[n]["area"])
    for name, _, area, confidence in table["data"]:
        assert area == pytest.approx(100 * expected.generators[name]["area"], abs=0.01)
        assert confidence == pytest.approx(expected.generators[name]["confidence"], abs=1e-3)
    assert ("Verdict: edited" if expected.is_edited else "Verdict: no edit detected") in verdict


def _gif(path: Path) -> Path:
    frames = [synthetic_pair(s, (40, 30))[0] for s in range(3)]
    return save(path, frames[0], "GIF", save_all=True, append_images=frames[1:])


def _exif(path: Path) -> Path:
    image = synthetic_pair(1, (40, 30))[0]
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    return save(path, image, "JPEG", exif=exif.tobytes())


ODD_INPUTS = {
    "animated.gif": (_gif, "first of 3 frames", (40, 30)),
    "cmyk.jpg": (lambda p: save(p, synthetic_pair(2, (40, 30))[0].convert("CMYK"), "JPEG"),
                 "CMYK image converted", (40, 30)),
    "deep.png": (lambda p: save(p, Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)),
                                "PNG"), "scaled to 8 bits", (40, 30)),
    "gray.png": (lambda p: save(p, synthetic_pair(3, (40, 30))[0].convert("L"), "PNG"), "grayscale",
                 (40, 30)),
    "alpha.png": (lambda p: save(p, synthetic_pair(4, (40, 30))[0].convert("RGBA"), "PNG"), "transparency",
                  (40, 30)),
    "rotated.jpg": (_exif, "EXIF orientation 6", (30, 40)),
}


@pytest.mark.parametrize("name", list(ODD_INPUTS))
def test_unusual_images_are_normalised_and_explained(client, tmp_path, name):
    make, note, (width, height) = ODD_INPUTS[name]
    path = make(tmp_path / name)
    *_, verdict, _, details = client.predict(handle_file(str(path)), api_name="/predict")
    assert (details["width"], details["height"]) == (width, height)
    assert any(note in n for n in details["input_notes"]), details["input_notes"]
    assert note in verdict


def _truncated(path: Path) -> Path:
    data = (save(path, synthetic_pair(0, (64, 64))[0], "PNG")).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_INPUTS = {
    "notes.txt": (lambda p: p.write_text("not an image") and p, "notes.txt: not an image file"),
    "cut.png": (_truncated, "cut.png: truncated or corrupt image data"),
    "huge.png": (lambda p: save(p, Image.new("L", (5000, 4000)), "PNG"), "huge.png: image is 5000x4000"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_inputs_give_readable_errors(client, tmp_path, name):
    make, message = BAD_INPUTS[name]
    path = make(tmp_path / name)
    with pytest.raises(Exception) as caught:
        client.predict(handle_file(str(path)), api_name="/predict")
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_normalize_image_scales_16_bit_and_keeps_rgb():
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    assert np.asarray(normalize_image(deep).image)[0, :, 0].tolist() == [0, 100, 255]
    rgb, _ = synthetic_pair(0, (8, 8))
    same = normalize_image(rgb)
    assert same.notes == [] and np.array_equal(np.asarray(same.image), np.asarray(rgb))


def test_queue_is_bounded_and_concurrent_requests_all_complete(server, client, tmp_path):
    app, _ = server
    assert app._queue.max_size == QUEUE_SIZE
    assert [fn.concurrency_limit for fn in app.fns.values() if fn.api_name == "predict"] == [CONCURRENCY]
    paths = [save(tmp_path / f"{i}.png", synthetic_pair(i, (32, 32))[0], "PNG") for i in range(3)]
    jobs = [client.submit(handle_file(str(p)), api_name="/predict") for p in paths]
    assert [job.result(timeout=120)[5]["width"] for job in jobs] == [32, 32, 32]


def test_page_without_detector_explains_configuration(monkeypatch, tmp_path, capsys):
    import gradio as gr

    monkeypatch.delenv("DIFFSEG_CHECKPOINT", raising=False)
    service = build_app(None).diffseg_service
    with pytest.raises(gr.Error, match="DIFFSEG_CHECKPOINT"):
        service.analyse({"path": str(tmp_path / "x.png"), "orig_name": "x.png"})
    broken = build_app(str(tmp_path / "missing")).diffseg_service
    with pytest.raises(gr.Error, match="cannot load the detector"):
        broken.analyse({"path": str(tmp_path / "x.png")})
    assert main(["demo", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "cannot load the detector" in capsys.readouterr().err


def test_checkpoint_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFSEG_CHECKPOINT", raising=False)
    assert resolve_checkpoint(None, tmp_path) is None
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "config.json").write_text("{}")
    assert resolve_checkpoint(None, tmp_path) == str(tmp_path / "checkpoint")
    monkeypatch.setenv("DIFFSEG_CHECKPOINT", "someone/model")
    assert resolve_checkpoint(None, tmp_path) == "someone/model"
    assert resolve_checkpoint("other/model", tmp_path) == "other/model"


def test_staged_space_runs_with_bundled_checkpoint_and_env_host_port(checkpoint, tmp_path):
    """The Space as `push space --checkpoint DIR` stages it: app.py + package copy + checkpoint/,
    started the way Spaces start it (GRADIO_SERVER_NAME/PORT from the environment)."""
    space = tmp_path / "space"
    assert main(["push", "space", "--repo-id", "someone/demo", "--checkpoint", str(checkpoint), "--dry-run",
                 "--out", str(space)]) == 0
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "DIFFSEG_CHECKPOINT"}
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "app.log").read_text()
        app_client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        path = save(tmp_path / "in.png", synthetic_pair(9, (32, 24))[0], "PNG")
        details = app_client.predict(handle_file(str(path)), api_name="/predict")[5]
        assert details["checkpoint"] == str(space / "checkpoint") and details["width"] == 32
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
