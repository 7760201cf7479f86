"""The benchmark: resumable plan semantics, paper plan construction, the quick plan end to end."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from diffseg30k.cli import main
from diffseg30k.experiments.artifacts import train_command
from diffseg30k.experiments.benchmark import STEP_NAMES, build_plan, run_benchmark
from diffseg30k.experiments.config import get_config, paper_config, quick_config
from diffseg30k.experiments.plan import Plan, Step, StepFailed

sys.path.insert(0, str(Path(__file__).parent))
from _experiments_fixtures import write_generation_release  # noqa: E402


# ------------------------------------------------------------------------------------------ plan
def _toy_plan(out: Path, calls: list[str], fail: set[str], fingerprint: str = "a") -> Plan:
    def make(name: str):
        def run(ctx):
            calls.append(name)
            if name in fail:
                raise RuntimeError(f"{name} broke")
            upstream = {req: ctx.result(req)["value"] for req in steps[name]}
            return {"value": len(calls), "upstream": upstream}
        return run

    steps = {"a": (), "b": ("a",), "c": ("b",), "d": ("a",)}
    return Plan([Step(n, n.upper(), make(n), r) for n, r in steps.items()], out, fingerprint=fingerprint,
                log=lambda _: None)


def test_an_interrupted_plan_resumes_without_redoing_finished_steps(tmp_path):
    calls: list[str] = []
    with pytest.raises(StepFailed, match="'c' failed: c broke"):
        _toy_plan(tmp_path, calls, fail={"c"}).run(progress=False)
    assert calls == ["a", "b", "c"]
    failed = json.loads((tmp_path / "steps" / "c.json").read_text())
    assert failed["status"] == "failed" and "c broke" in failed["error"]
    calls.clear()
    records = _toy_plan(tmp_path, calls, fail=set()).run(progress=False)
    assert calls == ["c", "d"]
    assert records["a"]["reused"] and records["b"]["reused"] and not records["c"]["reused"]
    assert records["c"]["result"]["upstream"] == {"b": 2}
    assert all(r["wall_s"] >= 0 for r in records.values())


def test_steps_run_alone_pull_missing_requirements_and_configs_invalidate(tmp_path):
    calls: list[str] = []
    _toy_plan(tmp_path, calls, fail=set()).run(["c"], progress=False)
    assert calls == ["a", "b", "c"]
    calls.clear()
    _toy_plan(tmp_path, calls, fail=set()).run(["c"], progress=False)
    assert calls == []  # finished: reused unless forced
    _toy_plan(tmp_path, calls, fail=set()).run(["c"], force=True, progress=False)
    assert calls == ["c"]
    calls.clear()
    _toy_plan(tmp_path, calls, fail=set(), fingerprint="b").run(["b"], progress=False)
    assert calls == ["a", "b"]  # another configuration: earlier records are stale
    with pytest.raises(ValueError, match="unknown steps"):
        _toy_plan(tmp_path, calls, fail=set()).run(["zz"], progress=False)


def test_a_rerun_step_runs_each_time_it_is_planned(tmp_path):
    calls: list[str] = []
    def run(name: str):
        return lambda ctx: calls.append(name) or {"planned": list(ctx.planned)}

    steps = [Step("a", "A", run("a")), Step("t", "T", run("t"), ("a",), rerun=True),
             Step("b", "B", run("b"), ("t",))]
    Plan(steps, tmp_path, fingerprint="x", log=lambda _: None).run(["b"], progress=False)
    records = Plan(steps, tmp_path, fingerprint="x", log=lambda _: None).run(["b"], progress=False)
    assert calls == ["a", "t", "b", "t"]       # b is done, yet t (rerun) was planned by the explicit b
    assert records["t"]["result"]["planned"] == ["t", "b"]


def test_work_folders_of_other_settings_are_never_resumed(tmp_path):
    from diffseg30k.experiments.artifacts import prepare_folder

    folder = tmp_path / "ck"
    prepare_folder(folder, {"steps": 3})
    (folder / "partial.bin").write_bytes(b"x")
    prepare_folder(folder, {"steps": 3})
    assert (folder / "partial.bin").exists()
    prepare_folder(folder, {"steps": 4})
    assert not (folder / "partial.bin").exists()
    assert json.loads((folder / "benchmark-settings.json").read_text()) == {"steps": 4}


# --------------------------------------------------------------------------------- paper config
def test_paper_plan_is_wired_like_the_quick_one(tmp_path):
    paper, quick = paper_config(), quick_config()
    assert build_plan(paper, tmp_path).names == build_plan(quick, tmp_path).names == list(STEP_NAMES[:-1])
    assert paper.dataset == "Chaos2629/Diffseg30k" and paper.train_preset == "paper"
    assert paper.families == {"segformer": "segformer-b2", "deeplabv3plus": "deeplabv3plus-r50",
                              "fcn8s": "fcn8s-r50"}
    assert paper.classifiers == {"cnnspot": "cnnspot-r50", "ufd": "ufd-vitl14"}
    assert paper.fingerprint() != quick.fingerprint()
    command = train_command(paper, "/data/ds", "segformer-b2", "binary", tmp_path / "ck",
                            holdout=("sd2", "sd35"), augment="robust")
    assert command[:3] == ["accelerate", "launch", "--num_processes"]
    text = " ".join(command)
    for part in ("-m diffseg30k train", "--preset paper", "--holdout sd2,sd35", "--augment robust",
                 "--mixed_precision bf16", "--resume", "--model segformer-b2", "--task binary"):
        assert part in text
    import argparse

    from diffseg30k.cli.train_cmd import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(command[command.index("train") + 1:])  # the train CLI accepts every flag
    assert parsed.holdout == "sd2,sd35" and parsed.preset == "paper"
    assert len(paper.with_all_pairs().holdouts) == 28
    with pytest.raises(ValueError, match="unknown benchmark config"):
        get_config("huge")


def test_cli_lists_and_dry_runs(tmp_path, capsys):
    assert main(["benchmark", "--list-steps"]) == 0
    assert "tab7" in capsys.readouterr().out
    assert main(["benchmark", "--config", "paper", "--dry-run", "--out", str(tmp_path / "p"),
                 "--num-processes", "8"]) == 0
    out = capsys.readouterr().out
    assert "accelerate launch --num_processes 8" in out and "tab4" in out
    assert main(["benchmark", "--steps", "tab9", "--out", str(tmp_path / "p")]) == 2


# ----------------------------------------------------------------------------------- end to end
TINY_TRAIN = {"max_steps": 3, "crop_size": 32, "batch_size": 4, "eval_split": None, "save_every": 0,
              "log_with": None, "progress": False, "num_workers": 0, "threads": 1}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    source = write_generation_release(root / "gen", num=20, size=48)
    config = quick_config(dataset=str(source), train_overrides=TINY_TRAIN, distortions=("jpeg60", "resize64"),
                          holdouts=(("sd2", "kolors"),), classifier_steps=3, bootstrap=10, variant_limit=1,
                          robust_tasks=("semantic",), qualitative_images=2)
    first = run_benchmark(config, root / "out", steps=["tab2"], progress=False, command="pytest",
                          log=lambda _: None)  # a partial run (as if interrupted after tab2) ...
    assert [n for n, r in first.items() if r["status"] == "done"] == ["data", "train", "tab2"]
    records = run_benchmark(config, root / "out", progress=False, command="pytest", log=lambda _: None)
    assert records["data"]["reused"] and records["tab2"]["reused"]  # ... resumes, not redoing them
    assert not records["tab3"]["reused"]
    return config, root / "out", records


def test_quick_plan_end_to_end(quick_run):
    config, out, records = quick_run
    assert [n for n, r in records.items() if r["status"] == "done"] == list(STEP_NAMES[:-1])
    results = json.loads((out / "results.json").read_text())
    for key in ("schema", "command", "config", "config_fingerprint", "seeds", "dataset", "metric_spec",
                "environment", "steps", "tables", "checkpoints", "figures", "paper", "total_wall_s"):
        assert key in results, key
    assert results["schema"] == "diffseg30k-benchmark/1" and results["command"] == "pytest"
    assert len(results["dataset"]["fingerprint"]) == 64
    assert results["metric_spec"]["semantic"]["task"] == "both"
    assert results["metric_spec"]["binary"]["metric"] == "diffseg30k"
    assert all(s["wall_s"] >= 0 and s["status"] == "done" for s in results["steps"].values())
    tab2 = results["tables"]["tab2"]
    assert {(r["family"], r["task"]) for r in tab2} == {(f, t) for f in config.families
                                                       for t in ("binary", "semantic")}
    assert all(0 <= r["metrics"]["binary_accuracy"] <= 1 for r in tab2 if r["task"] == "binary")
    assert all("ci" in r for r in tab2)
    tab3 = results["tables"]["tab3"]
    assert {r["distortion"] for r in tab3} == {"none", "jpeg60", "resize64"}
    assert {r["training"] for r in tab3} == {"plain", "robust"}
    assert {r["setting"] for r in results["tables"]["tab4"]} == {"baseline", "sd2+kolors"}
    assert {r["family"] for r in results["tables"]["tab5"]} >= {"cnnspot", "ufd", *config.families}
    assert {r["setting"] for r in results["tables"]["tab7"]} == {"sdxl", "sdxl-lora"}
    assert {r["subset"] for r in results["tables"]["tab8"]} == {"real", "ai"}
    for checkpoint in results["checkpoints"].values():
        assert Path(checkpoint["path"], "model.safetensors").is_file() and len(checkpoint["sha256"]) == 64
    for figure in results["figures"]:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "(0.838)" in report and "(0.699)" in report  # the paper's FCN-8s numbers beside ours
    assert "Tab. 7" in report and "Quick configuration" in report


def test_the_train_step_trains_side_by_side_the_same_detectors_the_tables_would(quick_run, tmp_path):
    from diffseg30k.experiments.artifacts import TrainingJob
    from diffseg30k.experiments.trainings import waves

    config, out, _ = quick_run
    side_by_side = replace(config, parallel_trainings=2)
    assert side_by_side.fingerprint() == config.fingerprint()
    records = run_benchmark(side_by_side, tmp_path / "out", steps=["tab4"], progress=False,
                            log=lambda _: None)
    train = records["train"]["result"]
    assert train["parallel"] == 2
    assert set(train["trained"]) == {"fcn8s-binary", "fcn8s-binary-holdout-sd2-kolors", "fcn8s-semantic"}
    # trained in two subprocesses at once, yet the same bytes as trained one by one in this process
    for key in train["trained"]:
        ours = json.loads((tmp_path / "out" / "checkpoints" / key / "benchmark-done.json").read_text())
        theirs = json.loads((out / "checkpoints" / key / "benchmark-done.json").read_text())
        assert ours["sha256"] == theirs["sha256"], key
    assert (tmp_path / "out" / "checkpoints" / "fcn8s-binary" / "train.log").is_file()
    binary, semantic = TrainingJob("fcn8s", "binary"), TrainingJob("fcn8s", "semantic")
    held = TrainingJob("fcn8s", "binary", ("sd2", "kolors"))
    assert semantic.warm_start(config) == binary and held.warm_start(config) is None
    assert waves([semantic, binary, held], config) == [[binary, held], [semantic]]


def test_a_failed_training_stops_its_siblings_and_names_its_log(quick_run, tmp_path, monkeypatch):
    from diffseg30k.experiments import trainings
    from diffseg30k.experiments.artifacts import PreparedTraining, TrainingJob
    from diffseg30k.training.config import TrainConfig

    _, out, _ = quick_run
    dataset = json.loads((out / "results.json").read_text())["dataset"]["path"]
    started = []
    real_popen = trainings.subprocess.Popen
    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(trainings.subprocess, "Popen", popen)

    def prepared(key: str, data: str, steps: int) -> PreparedTraining:
        folder = tmp_path / key
        folder.mkdir()
        config = TrainConfig(dataset=data, out=folder, model="fcn8s-tiny", task="binary", max_steps=steps,
                             crop_size=32, batch_size=4,
                             from_scratch=True, eval_split=None, log_with=None, threads=1, num_workers=0)
        return PreparedTraining(TrainingJob("fcn8s", key), folder, config, None)

    long = prepared("long", dataset, 100_000)
    broken = prepared("broken", str(tmp_path / "no-such-dataset"), 3)
    with pytest.raises(StepFailed, match=r"training fcn8s-broken failed .*broken/train.log") as failed:
        trainings.train_concurrently(_context(out), [long, broken], parallel=2)
    assert "no-such-dataset" in str(failed.value)              # the end of its log says why
    assert len(started) == 2 and all(p.poll() is not None for p in started)  # the long one was stopped
    assert not long.marker.exists()


def _context(out: Path):
    from diffseg30k.experiments.plan import PlanContext

    return PlanContext(out, None, log=lambda _: None)


def test_a_semantic_folder_follows_the_binary_detector_it_starts_from(quick_run):
    _, out, _ = quick_run
    binary = json.loads((out / "checkpoints" / "fcn8s-binary" / "benchmark-done.json").read_text())
    settings = json.loads((out / "checkpoints" / "fcn8s-semantic" / "benchmark-settings.json").read_text())
    assert settings["init_from_sha256"] == binary["sha256"]     # another binary detector: retrained
    held = json.loads((out / "checkpoints" / "fcn8s-binary" / "benchmark-settings.json").read_text())
    assert "init_from_sha256" not in held                      # folders of earlier versions stay valid


def test_one_benchmark_run_per_output_folder(tmp_path):
    from diffseg30k.outputs import OutputBusy, output_lock

    with output_lock(tmp_path / "out", "another benchmark"), pytest.raises(OutputBusy, match="another"):
        run_benchmark(quick_config(), tmp_path / "out", steps=["data"], progress=False, log=lambda _: None)


def test_sigterm_raises_inside_the_block_only():
    import os
    import signal

    from diffseg30k.children import sigterm_raises

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # pragma: no cover - the handler raises first
    assert stopped.value.code == 128 + signal.SIGTERM and signal.getsignal(signal.SIGTERM) == before


def test_second_run_reuses_every_step(quick_run):
    config, out, _ = quick_run
    before = {p: p.stat().st_mtime_ns for p in (out / "checkpoints").rglob("model.safetensors")}
    records = run_benchmark(config, out, progress=False, command="pytest", log=lambda _: None)
    assert records["train"]["result"]["trained"] == []          # the train step re-runs: nothing to do
    assert all(r["reused"] for n, r in records.items() if n != "train")
    assert before == {p: p.stat().st_mtime_ns for p in (out / "checkpoints").rglob("model.safetensors")}


def test_evaluate_cli_and_rescoring(quick_run, tmp_path, capsys):
    config, out, _ = quick_run
    dataset = json.loads((out / "results.json").read_text())["dataset"]["path"]
    family = next(iter(config.families))
    checkpoint = json.loads((out / "checkpoints" / f"{family}-semantic" / "benchmark-done.json").read_text())
    report = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", checkpoint["path"], "--dataset", dataset, "--distortions",
                 "jpeg80,crop", "--bootstrap", "10", "--report", str(report)]) == 0
    first = json.loads((report / "evaluation.json").read_text())["scores"]
    assert set(first) == {"none", "jpeg80", "crop"}
    assert set(first["none"]["breakdowns"]) >= {"turns", "base", "area"}
    assert first["none"]["metrics"]["pixel_auc"] is not None  # edited probabilities were passed
    assert "IMDL conventions" in (report / "evaluation.md").read_text()
    again = tmp_path / "again"
    assert main(["evaluate", "--from-predictions", str(report / "predictions"), "--bootstrap", "10",
                 "--report", str(again)]) == 0
    second = json.loads((again / "evaluation.json").read_text())["scores"]
    for name in first:
        assert second[name]["metrics"] == first[name]["metrics"] and second[name]["ci"] == first[name]["ci"]
    assert "evaluation" in (again / "evaluation.md").read_text().lower()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", checkpoint["path"], "--dataset", dataset, "--distortions",
                 "jpeg1000", "--report", str(tmp_path / "bad")]) == 2
    assert "jpeg1000" in capsys.readouterr().err
    assert main(["evaluate", "--from-predictions", str(tmp_path), "--report", str(tmp_path / "bad")]) == 2


def test_a_missing_generation_pipeline_fails_the_data_step_clearly(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffseg30k.generation.mini", None)  # import fails
    with pytest.raises(StepFailed, match="needs the generation pipeline.*--dataset"):
        run_benchmark(quick_config(), tmp_path / "out", steps=["data"], progress=False, log=lambda _: None)
    record = json.loads((tmp_path / "out" / "steps" / "data.json").read_text())
    assert record["status"] == "failed"
    assert "not run" in (tmp_path / "out" / "report.md").read_text()


def test_report_caveat_states_the_learnability_bar():
    from diffseg30k.experiments.report import learnability

    rows = [{"family": "fcn8s", "task": "binary", "metrics": {"binary_miou": 0.72}},
            {"family": "fcn8s", "task": "semantic", "metrics": {"binary_miou": 0.5, "semantic_miou": 0.21}}]
    text = learnability({"tab2": {"rows": rows}})
    assert "best binary miou 0.720 (meets the 0.7 bar)" in text
    assert "best semantic miou 0.210 (BELOW the 0.4 bar)" in text
    assert learnability({}) == ""
