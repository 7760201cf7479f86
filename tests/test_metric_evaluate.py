"""The evaluate module evaluate_metrics/diffseg30k: offline loading, streaming, distribution, widget."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
from pathlib import Path

import evaluate
import numpy as np
import pytest

from diffseg30k.metrics import DiffSegMetric
from diffseg30k.metrics.fixtures import realistic_pair, realistic_scores

MODULE = Path(__file__).resolve().parents[1] / "evaluate_metrics" / "diffseg30k"


@pytest.fixture(scope="module")
def pairs():
    return [realistic_pair(i, 48, ignore_band=i % 3 == 0, edited=i % 4 != 0) for i in range(12)]


@pytest.fixture(scope="module")
def score_maps(pairs):
    return [realistic_scores(p, r, i) for i, (p, r) in enumerate(pairs)]


def direct(pairs, scores=None, pixel_scores=None, **kwargs):
    metric = DiffSegMetric(**kwargs)
    metric.update_batch([p for p, _ in pairs], [r for _, r in pairs], scores, pixel_scores)
    return json.dumps(metric.compute())


def test_compute_offline_matches_library(pairs):
    torch = pytest.importorskip("torch")
    from PIL import Image

    metric = evaluate.load(str(MODULE))
    assert metric.name == "diffseg30k"
    preds = [torch.from_numpy(p) if i % 2 else Image.fromarray(p, "L") for i, (p, _) in enumerate(pairs)]
    out = metric.compute(predictions=preds, references=[r.tolist() for _, r in pairs])
    assert json.dumps(out) == direct(pairs)


def test_streaming_add_batch_add_and_compute_options(pairs, tmp_path):
    metric = evaluate.load(str(MODULE), cache_dir=str(tmp_path))
    metric.add_batch(predictions=np.stack([p for p, _ in pairs[:6]]), references=[r for _, r in pairs[:6]])
    for p, r in pairs[6:]:
        metric.add(prediction=p, reference=r)
    assert metric.selected_feature_format["predictions"].dtype == "binary"  # statistics rows, not maps
    out = metric.compute(task="binary", area_threshold=0.05)
    assert json.dumps(out) == direct(pairs, task="binary", area_threshold=0.05)
    scores = np.linspace(0, 1, len(pairs))
    metric.add_batch(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])
    assert json.dumps(metric.compute(scores=scores)) == direct(pairs, scores=scores)


def test_load_time_options_and_mismatch(pairs, tmp_path):
    metric = evaluate.load(str(MODULE), boundary_tolerance=0.03, task="semantic", cache_dir=str(tmp_path))
    metric.add_batch(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])
    assert json.dumps(metric.compute()) == direct(pairs, boundary_tolerance=0.03, task="semantic")
    plain = evaluate.load(str(MODULE), cache_dir=str(tmp_path), experiment_id="mismatch")
    plain.add_batch(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])
    with pytest.raises(ValueError, match="boundary_tolerance=0.0075"):
        plain.compute(boundary_tolerance=0.03)
    one_shot = evaluate.load(str(MODULE), cache_dir=str(tmp_path), experiment_id="one-shot")
    out = one_shot.compute(predictions=[p for p, _ in pairs], references=[r for _, r in pairs],
                           boundary_tolerance=0.03)
    assert json.dumps(out) == direct(pairs, boundary_tolerance=0.03)


def test_bad_input_is_reported_with_the_pair(tmp_path):
    metric = evaluate.load(str(MODULE), cache_dir=str(tmp_path))
    good = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="pair 1: prediction has float labels"):
        metric.add_batch(predictions=[good, good.astype(float)], references=[good, good])
    with pytest.raises(ValueError, match="unknown options"):
        metric.compute(predictions=[good], references=[good], colour="red")


def test_pixel_scores_streamed_stored_as_statistics_only(pairs, score_maps, tmp_path):
    metric = evaluate.load(str(MODULE), cache_dir=str(tmp_path))
    metric.add_batch(predictions=[p for p, _ in pairs[:6]], references=[r for _, r in pairs[:6]],
                     pixel_scores=np.stack(score_maps[:6]))
    for (p, r), m in zip(pairs[6:], score_maps[6:]):
        metric.add(prediction=p, reference=r, pixel_scores=m)
    out = metric.compute()
    assert json.dumps(out) == direct(pairs, pixel_scores=score_maps)
    assert 0.5 < out["pixel_auc"] <= 1 and out["spec"]["conventions"]["pixel_auc"].startswith("pooled")
    one_shot = evaluate.load(str(MODULE), cache_dir=str(tmp_path), experiment_id="one-shot")
    out = one_shot.compute(predictions=[p for p, _ in pairs], references=[r for _, r in pairs],
                           pixel_scores=score_maps, task="binary")
    assert json.dumps(out) == direct(pairs, pixel_scores=score_maps, task="binary")
    asked = evaluate.load(str(MODULE), cache_dir=str(tmp_path), experiment_id="asked", imdl=True)
    out = asked.compute(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])
    assert json.dumps(out) == direct(pairs, imdl=True)
    bad = evaluate.load(str(MODULE), cache_dir=str(tmp_path), experiment_id="bad")
    with pytest.raises(ValueError, match="pair 1: pixel_scores contains NaN"):
        bad.add_batch(predictions=[p for p, _ in pairs[:2]], references=[r for _, r in pairs[:2]],
                      pixel_scores=[score_maps[0], np.full_like(score_maps[1], np.nan)])


def _process(rank, cache_dir, pairs, maps, queue):
    metric = evaluate.load(str(MODULE), num_process=2, process_id=rank, experiment_id="shared",
                           cache_dir=cache_dir)
    for (p, r), m in zip(pairs[rank::2], maps[rank::2]):
        metric.add_batch(predictions=[p], references=[r], pixel_scores=[m])
    queue.put((rank, metric.compute()))


def test_num_process_distribution_gives_identical_results(pairs, score_maps, tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_process, args=(rank, str(tmp_path), pairs, score_maps, queue))
               for rank in (0, 1)]
    for worker in workers:
        worker.start()
    results = dict(queue.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert results[1] is None
    reordered = pairs[0::2] + pairs[1::2]  # process 0's rows come first
    maps = score_maps[0::2] + score_maps[1::2]
    want = direct(pairs, pixel_scores=score_maps)
    assert json.dumps(results[0]) == direct(reordered, pixel_scores=maps) == want


def test_widget_built_with_evaluate_helpers(pairs):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("gradio")
    spec = importlib.util.spec_from_file_location("diffseg30k_metric_app", MODULE / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    module = evaluate.load(str(MODULE))
    interface = app.build_widget(module)
    assert type(interface).__name__ == "Interface"
    compute, names, _ = app.make_compute(module)
    assert names == ["predictions", "references"]
    p, r = pairs[1]
    frame = pd.DataFrame([[json.dumps(p.tolist()), json.dumps(r.tolist())]], columns=names)
    out = compute(frame)
    want = json.loads(direct([pairs[1]]).replace("NaN", "null"))
    assert out == want


def test_card_front_matter():
    text = (MODULE / "README.md").read_text()
    assert text.startswith("---\n") and "app_file: app.py" in text and "- evaluate" in text
    assert "NaN" in text and "dataset-level" in text
    assert (MODULE / "requirements.txt").read_text().strip()
