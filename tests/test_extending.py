"""Extending the toolkit from outside: a dummy detector, editor, distortion and paper table, each
registered from this test module, appear in the CLI listings and in the benchmark plan; mistyped
names get near-name suggestions in every registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from diffseg30k.cli import main
from diffseg30k.data.distortions import DISTORTION_KINDS, Distortion, get_distortion, register_distortion
from diffseg30k.experiments.benchmark import build_plan, run_benchmark, step_names
from diffseg30k.experiments.config import quick_config
from diffseg30k.experiments.steps import STEPS
from diffseg30k.experiments.tables import (
    REPORT_TABLES,
    TABLES,
    PaperTable,
    ReportTable,
    register_report_table,
    register_table,
    report_tables,
)
from diffseg30k.generation.editors.base import Editor, EditRequest
from diffseg30k.generation.editors.registry import EDITORS, create_editor, label_of
from diffseg30k.models.registry import DETECTORS, DetectorSpec, build_model
from diffseg30k.models.segformer import build_segformer
from diffseg30k.registry import Registry, RegistryError


class DummyVariantEditor(Editor):
    """A test variant of SDXL that paints the region grey."""

    name = "sdxl"
    editor_name = "sdxl-dummy"

    def load(self) -> None:
        self.pipeline = "loaded"

    def inpaint(self, request: EditRequest) -> Image.Image:
        return Image.new("RGB", request.image.size, (128, 128, 128))


def _posterize(bits: str) -> Distortion:
    from PIL import ImageOps

    return Distortion(f"posterize{bits}", f"keep {bits} bits per channel",
                      lambda image: ImageOps.posterize(image.convert("RGB"), int(bits)),
                      display=f"posterize {bits}")


def _run_tab99(ctx) -> dict:
    return {"rows": [{"table": "tab99", "family": "dummynet", "count": 3, "metrics": {"binary_miou": 0.5}}]}


def _render_tab99(results: dict) -> list[str]:
    rows = (results.get("tab99") or {}).get("rows", [])
    return [f"| dummy | {r['metrics']['binary_miou']:.3f} ({TAB99_PAPER['dummynet']['binary_miou']:.3f}) |"
            for r in rows]


TAB99_PAPER = {"dummynet": {"binary_miou": 0.75}}


def _render_extra99(results: dict) -> list[str]:
    rows = (results.get("extra99") or {}).get("rows", [])
    return [f"| extra | {r['metrics']['binary_miou']:.3f} |" for r in rows]


@pytest.fixture
def extended():
    """Register one of each from this module; unregister afterwards."""
    spec = DETECTORS.register(DetectorSpec(
        "dummynet-tiny", family="dummynet", description="a test detector (tiny SegFormer body)",
        build=lambda extra, pretrained: build_segformer("tiny", extra), pretrained=None, optimizer="adamw",
        tiny=True, backbone_prefixes=("segformer.",), display="DummyNet", abbreviation="DUM"))
    EDITORS.register(DummyVariantEditor)
    register_distortion("posterize", r"posterize(\d)?", "posterize[<bits>]", "4", "keep few bits")(_posterize)
    table = register_table(PaperTable("tab99", 99, "Tab. 99: a dummy table", "Tab. 99: dummy", TAB99_PAPER,
                                      _run_tab99, _render_tab99, requires=()))
    yield spec, table
    DETECTORS.unregister("dummynet-tiny")
    EDITORS.unregister("sdxl-dummy")
    DISTORTION_KINDS.unregister("posterize")
    TABLES.unregister("tab99")
    STEPS.unregister("tab99")


def test_dummy_entries_reach_the_cli_listings(extended, capsys):
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for needle in ("dummynet-tiny", "sdxl-dummy", "posterize[<bits>]", "tab99", "Tab. 99: a dummy table"):
        assert needle in listing, needle
    assert main(["train", "--list-models"]) == 0
    assert "dummynet-tiny" in capsys.readouterr().out
    assert main(["benchmark", "--list-steps"]) == 0
    assert "tab99" in capsys.readouterr().out


def test_dummy_entries_reach_the_benchmark_plan(extended, tmp_path, capsys):
    config = quick_config().with_detectors(["dummynet-tiny"])
    config.distortions = ("jpeg60", "posterize3")
    config.variant = "sdxl-dummy"
    plan = build_plan(config, tmp_path)
    assert plan.names[-4:] == ["tab99", "figures", "families", "cross"] and "tab99" in step_names()
    assert config.families["dummynet"] == "dummynet-tiny"
    assert main(["benchmark", "--dry-run", "--out", str(tmp_path / "p"), "--detectors", "dummynet-tiny",
                 "--distortions", "jpeg60,posterize3", "--variant", "sdxl-dummy"]) == 0
    out = capsys.readouterr().out
    assert "dummynet=dummynet-tiny" in out and "posterize3" in out and "sdxl-dummy" in out and "tab99" in out


def test_dummy_entries_work(extended, tmp_path):
    spec, table = extended
    model = build_model("dummynet-tiny", task="binary", crop_size=32)
    from diffseg30k.training.config import TrainConfig
    from diffseg30k.training.loop import _param_groups

    config = TrainConfig(dataset="x", out="y", lr=1.0, head_lr_mult=10.0, weight_decay=0.0)
    rates = sorted({group["lr"] for group in _param_groups(model, config, spec.backbone_prefixes)})
    assert rates == [1.0, 10.0]  # the spec's backbone prefix splits backbone from head
    assert label_of("sdxl-dummy") == "sdxl"
    editor = create_editor("sdxl-dummy")
    editor.load()
    request = EditRequest(Image.new("RGB", (8, 8)), np.ones((8, 8), bool), "a cat", 0)
    assert np.asarray(editor.inpaint(request)).mean() == 128
    distortion = get_distortion("posterize3")
    assert distortion.display == "posterize 3" and distortion(Image.new("RGB", (4, 4), (255, 7, 9))).getpixel(
        (0, 0)) == (224, 0, 0)
    config = quick_config(dataset=str(tmp_path), torch_threads=None)
    run_benchmark(config, tmp_path / "out", steps=["tab99"], progress=False, command="pytest",
                  log=lambda _: None)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Tab. 99: a dummy table" in report and "| dummy | 0.500 (0.750) |" in report
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["paper"]["tab99"] == TAB99_PAPER and results["tables"]["tab99"][0]["count"] == 3


def test_a_table_without_paper_numbers_fails_when_defined():
    with pytest.raises(ValueError, match="paper numbers are missing"):
        PaperTable("tab98", 98, "Tab. 98", "Tab. 98", {}, _run_tab99, _render_tab99)
    for table in TABLES.values():  # every shipped table carries its reference numbers and renders
        assert table.paper and table.title.startswith(f"Tab. {table.number}")
        assert isinstance(table.render({}), list)


def test_a_report_table_without_paper_numbers_registers_from_its_module(tmp_path):
    stale_calls = []
    table = register_report_table(ReportTable(
        "extra99", 1_005.0, "Extra 99: not in the paper", "Extra 99", _run_tab99, _render_extra99,
        requires=(), forget_stale=lambda plan, config: stale_calls.append(plan.names)))
    try:
        assert [t.name for t in report_tables()][-4:] == ["tab8", "extra99", "families", "cross"]
        assert build_plan(quick_config(), tmp_path).names[-4:] == ["figures", "extra99", "families", "cross"]
        with pytest.raises(ValueError, match="paper table has that name"):
            register_report_table(ReportTable("tab2", 1.0, "t", "t", _run_tab99, _render_tab99))
        config = quick_config(dataset=str(tmp_path), torch_threads=None)
        run_benchmark(config, tmp_path / "out", steps=["extra99"], progress=False, command="pytest",
                      log=lambda _: None)
        report = (tmp_path / "out" / "report.md").read_text()
        assert "## Extra 99: not in the paper" in report and "| extra | 0.500 |" in report
        results = json.loads((tmp_path / "out" / "results.json").read_text())
        assert results["tables"]["extra99"][0]["count"] == 3 and "extra99" not in results["paper"]
        assert stale_calls and "extra99" in stale_calls[0]
    finally:
        REPORT_TABLES.unregister(table.name)
        STEPS.unregister(table.name)


@pytest.mark.parametrize("call, suggestion", [
    (lambda: build_model("segformr-b0"), "segformer-b0"),
    (lambda: create_editor("flx"), "flux"),
    (lambda: get_distortion("resze64"), "resize64"),
    (lambda: get_distortion("jpg60"), "jpeg60"),
    (lambda: __import__("diffseg30k.models.classifiers", fromlist=["x"]).build_classifier("cnnspot-tny"),
     "cnnspot-tiny"),
    (lambda: STEPS.get("tab22"), "tab2"),
])
def test_every_registry_suggests_near_names(call, suggestion):
    with pytest.raises(RegistryError, match=f"did you mean {suggestion}") as info:
        call()
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)  # old excepts still work


def test_cli_names_the_suggestion(capsys, tmp_path):
    assert main(["train", "--dataset", "x", "--out", str(tmp_path), "--model", "segformr-b0"]) == 2
    assert "did you mean segformer-b0?" in capsys.readouterr().err
    assert main(["benchmark", "--steps", "tab22", "--out", str(tmp_path / "b")]) == 2
    assert "did you mean tab2?" in capsys.readouterr().err
    assert main(["benchmark", "--dry-run", "--out", str(tmp_path / "b"), "--detectors", "fcn8-tiny"]) == 2
    assert "did you mean fcn8s-tiny?" in capsys.readouterr().err
    assert main(["evaluate", "--from-predictions", str(tmp_path), "--report", str(tmp_path),
                 "--by", "tuns"]) == 2
    assert "did you mean turns?" in capsys.readouterr().err


def test_a_fresh_process_finds_every_detector_module(tmp_path):
    """No hand-kept import list: loading a saved CNN detector in a new process registers its class."""
    import subprocess
    import sys

    build_model("fcn8s-tiny", task="binary", crop_size=32).save_pretrained(tmp_path / "ckpt")
    code = ("import sys; from diffseg30k.models.registry import load_model; "
            "print(type(load_model(sys.argv[1])).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ckpt")], capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FCN8sForSemanticSegmentation"


def test_registry_rules():
    fresh = Registry("thing")
    first = fresh.register("a")(object())
    assert fresh.get("a") is first and fresh.names() == ["a"]
    with pytest.raises(ValueError, match="registered twice"):
        fresh.register(object(), name="a")
    assert fresh.unregister("a") is first and "a" not in fresh


def test_a_module_needing_a_missing_optional_library_is_skipped(tmp_path, monkeypatch):
    package = tmp_path / "plugpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("from tests_plug_registry import REG\nREG.register('good')(object())\n")
    (package / "needs_extra.py").write_text("import not_an_installed_library_xyz\n")
    (tmp_path / "tests_plug_registry.py").write_text(
        "from diffseg30k.registry import Registry\nREG = Registry('plugin', package='plugpkg')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from tests_plug_registry import REG

    with pytest.warns(UserWarning, match="not_an_installed_library_xyz"):
        assert REG.names() == ["good"]
    assert "plugpkg.needs_extra" in REG.skipped
