"""The mini stand-in editors: classical content, trained family components, profiles, import graph."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffseg30k.generation import components, standin
from diffseg30k.generation.editors.base import EditRequest
from diffseg30k.generation.editors.registry import get_editor_class, installed_generators
from diffseg30k.generation.profiles import MINI, PROFILES, get_profile
from diffseg30k.generation.quality import StatisticsQualityScorer


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return MINI.varied_photo("coffee", np.random.default_rng(0)).resize((64, 64))


def _mask(size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return ((yy - 30) / 14.0) ** 2 + ((xx - 34) / 18.0) ** 2 <= 1.0


@pytest.mark.parametrize("edit_type", ["removal", "attribute", "addition"])
def test_classical_content_changes_only_the_mask_and_passes_the_quality_filter(photo, edit_type):
    editor = MINI.editor("sd2")
    mask = _mask()
    out = editor.content(EditRequest(photo, mask, "a prompt", seed=3, edit_type=edit_type))
    before, after = np.asarray(photo, np.int16), np.asarray(out, np.int16)
    assert np.array_equal(before[~mask], after[~mask])
    assert np.abs(before[mask] - after[mask]).mean() > 3
    result = StatisticsQualityScorer().score(out, mask)
    assert result.accepted, result.reason


def test_unknown_edit_type_is_a_clear_error(photo):
    with pytest.raises(ValueError, match="unknown edit type 'recolour' for the mini sd2 editor"):
        MINI.editor("sd2").content(EditRequest(photo, _mask(), "p", seed=0, edit_type="recolour"))


def test_every_generator_has_trained_weights_that_reconstruct_photos_and_differ(photo):
    target = np.asarray(photo, np.float64)
    outputs = {}
    for name in installed_generators():
        spec = get_editor_class(name).component
        out = np.asarray(components.load_component(spec).resynthesize(photo), np.float64)
        psnr = 10 * np.log10(255.0 ** 2 / np.mean((out - target) ** 2))
        floor = 15 if spec.kind == "vq" else 20  # Kandinsky's 256-code VQModel is the blurriest (~17 dB)
        assert psnr > floor, f"{name}: PSNR {psnr:.1f} dB"
        outputs[name] = out
    names = sorted(outputs)
    for i, a in enumerate(names):  # each family leaves its own trace
        for b in names[i + 1:]:
            assert np.abs(outputs[a] - outputs[b]).mean() > 0.3, (a, b)


def test_sampler_residual_is_seeded_per_edit_and_rendered_by_each_family(photo):
    from dataclasses import replace

    spec = get_editor_class("sd2").component
    assert spec.latent_noise > 0 and "sampler-residual" in spec.backend
    component = components.load_component(spec)
    clean = np.asarray(component.resynthesize(photo), np.int16)
    first, again = (np.asarray(component.resynthesize(photo, seed=5), np.int16) for _ in range(2))
    other = np.asarray(component.resynthesize(photo, seed=6), np.int16)
    assert np.array_equal(first, again)  # reproducible: the residual is drawn from the edit's seed
    assert np.abs(first - clean).mean() > 1 and np.abs(first - other).mean() > 1
    silent = components.load_component(replace(spec, latent_noise=0.0))
    assert np.array_equal(np.asarray(silent.resynthesize(photo, seed=5), np.int16), clean)
    assert "sampler-residual" not in silent.spec.backend


def test_shipped_weights_are_small_safetensors():
    files = sorted(components.WEIGHTS_DIR.glob("*.safetensors"))
    assert len(files) == len(installed_generators()) + 2  # + the two shared trunks
    assert sum(f.stat().st_size for f in files) <= 10 * 2**20


def test_missing_weights_name_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_mini_components"):
        components.load_component(get_editor_class("sd2").component, folder=tmp_path)


def test_training_script_writes_loadable_weights(tmp_path):
    from diffseg30k.generation import train_mini_components

    train_mini_components.main(["--out", str(tmp_path), "--trunk-steps", "2", "--tail-steps", "1",
                                "--adversarial-steps", "1", "--crop", "16", "--only", "trunk4", "sd2"])
    component = components.load_component(get_editor_class("sd2").component, folder=tmp_path)
    assert component.resynthesize(Image.new("RGB", (20, 12), (90, 120, 30))).size == (20, 12)


def test_adversarial_stage_rewrites_only_the_tail_and_unknown_stages_fail(tmp_path, capsys):
    from safetensors.torch import load_file

    from diffseg30k.generation import train_mini_components

    train_mini_components.main(["--out", str(tmp_path), "--trunk-steps", "1", "--tail-steps", "1",
                                "--adversarial-steps", "0", "--crop", "16", "--only", "trunk4", "sd2"])
    before = load_file(str(components.weights_path("sd2", tmp_path)))
    train_mini_components.main(["--out", str(tmp_path), "--stages", "adversarial", "--adversarial-steps",
                                "2", "--crop", "16", "--only", "sd2"])
    after = load_file(str(components.weights_path("sd2", tmp_path)))
    assert sorted(after) == sorted(before) == components.tail_keys(before)
    assert any(not (after[k] == before[k]).all() for k in after)
    with pytest.raises(SystemExit):
        train_mini_components.main(["--out", str(tmp_path), "--stages", "adversary"])
    assert "expected a comma-separated subset of trunk, tail, adversarial" in capsys.readouterr().err
    for bad, message in ((["--only", "sdxx"], "--only sdxx: unknown"),
                         (["--adversarial-steps", "-1"], "--adversarial-steps must be >= 0")):
        with pytest.raises(SystemExit):
            train_mini_components.main(["--out", str(tmp_path / "unused"), *bad])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "unused").exists()  # refused before anything is written


def test_ai_bases_are_images_with_the_family_backend():
    editor = MINI.editor("kandinsky")
    scenes = [np.asarray(editor.text_to_image("a caption", seed, 64), np.float32) for seed in range(4)]
    assert all(s.std() > 10 for s in scenes)
    assert "VQModel" in editor.backend and "no diffusion step" in editor.backend
    assert np.asarray(standin.procedural_scene(32, np.random.default_rng(0))).shape == (32, 32, 3)


def test_profiles_provide_every_piece_and_unknown_names_fail():
    for profile in PROFILES.values():
        for piece in ("sources", "load_base", "editor", "region_proposer", "prompter", "quality_scorer"):
            assert callable(getattr(profile, piece)), (profile.name, piece)
        assert profile.captions
    assert get_profile("tiny").editor("sd2").backend == "SD2Editor (tiny random weights)"
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile("huge")


def _generation_imports() -> dict[str, set[str]]:
    """module -> the generation modules it imports anywhere (function-local imports included)."""
    folder = Path(__file__).resolve().parents[1] / "diffseg30k" / "generation"
    graph = {}
    for path in folder.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        prefix = "diffseg30k.generation."
        graph[path.stem] = {n[len(prefix):].split(".")[0] for n in names if n.startswith(prefix)}
    return graph


def test_generation_modules_import_without_cycles():
    graph = _generation_imports()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(trail + [node])}")
        if state.get(node) == 2 or node not in graph:
            return
        state[node] = 1
        for child in graph[node]:
            visit(child, trail + [node])
        state[node] = 2

    for module in graph:
        visit(module, [])


def test_mini_data_fingerprint_follows_the_component_weights(tmp_path):
    from diffseg30k.generation.component_spec import weights_digest
    from diffseg30k.generation.plan import GenerationConfig

    for path in components.WEIGHTS_DIR.glob("*.safetensors"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    before = weights_digest(tmp_path)
    assert before == weights_digest()
    victim = tmp_path / "sd2.safetensors"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    assert weights_digest(tmp_path) != before  # retrained weights: the cached mini data is rebuilt
    fingerprint = GenerationConfig(out=tmp_path / "g", profile="mini").fingerprint()
    assert fingerprint["components"] == before
    assert "components" not in GenerationConfig(out=tmp_path / "g", profile="tiny").fingerprint()


def test_procedural_scenes_survive_shapes_drawn_outside_the_image():
    # seeds 0-5 at 128 px drew a polygon wholly outside the image once (an empty shape crashed)
    editor = MINI.editor("kandinsky")
    for seed in range(6):
        assert np.asarray(editor.text_to_image("a caption", seed, 128)).shape == (128, 128, 3)
