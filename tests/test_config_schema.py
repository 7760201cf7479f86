"""TrainConfig is the training CLI's single schema: one flag per field, --config FILE, and the
benchmark's accelerate launcher hands over the whole configuration (every override reaches it)."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from diffseg30k.cli.schema import add_dataclass_arguments, config_from_args
from diffseg30k.cli.train_cmd import add_arguments
from diffseg30k.experiments.artifacts import TRAIN_CONFIG_FILE, train_command, train_config
from diffseg30k.experiments.config import paper_config
from diffseg30k.training.config import TrainConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


def test_every_train_config_field_has_a_flag():
    flags = {a.dest for a in _parser()._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= flags


def test_flags_become_the_config():
    args = _parser().parse_args(["--dataset", "d", "--out", "o", "--holdout", "sd2,sd35",
                                 "--poly-power", "0.5", "--head_lr_mult", "3", "--no-progress", "--resume",
                                 "--eval-split", "none",
                                 "--augment", "none", "--extra", '{"note": 1}', "--log-with", "none"])
    config = config_from_args(TrainConfig, args)
    assert config.holdout == ("sd2", "sd35") and config.poly_power == 0.5 and config.head_lr_mult == 3.0
    assert not config.progress and config.resume and config.eval_split is None and config.augment is None
    assert config.extra == {"note": 1} and config.log_with is None
    assert config.model == "segformer-tiny" and config.grad_accum == 1  # untouched fields keep defaults
    with pytest.raises(ValueError, match="--dataset and --out are required"):
        config_from_args(TrainConfig, _parser().parse_args([]))
    with pytest.raises(ValueError, match="JSON object"):
        bad = ["--dataset", "d", "--out", "o", "--extra", "[1]"]
        config_from_args(TrainConfig, _parser().parse_args(bad))


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"dataset": "d", "out": "o", "lr": 0.5, "max_steps": 7}))
    config = config_from_args(TrainConfig, _parser().parse_args(["--config", str(path), "--max-steps", "9"]))
    assert config.lr == 0.5 and config.max_steps == 9  # the flag given wins over the file
    path.write_text(json.dumps({"dataset": "d", "out": "o", "poly_powr": 1}))
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        config_from_args(TrainConfig, _parser().parse_args(["--config", str(path)]))


def test_accelerate_launcher_receives_every_override(tmp_path):
    """``poly_power`` (and every other override) reached in-process training but not ``accelerate
    launch``, whose flags were rebuilt by hand; now the launcher reads the config itself."""
    cfg = paper_config(train_overrides={"mixed_precision": "bf16", "poly_power": 0.5, "progress": False,
                                        "log_with": None, "eval_split": None})
    out = tmp_path / "ck"
    expected = train_config(cfg, "/data/ds", "segformer-b2", "binary", out, ("sd2", "sd35"), "robust")
    out.mkdir()
    (out / TRAIN_CONFIG_FILE).write_text(json.dumps(expected.to_json_dict()))
    command = train_command(cfg, "/data/ds", "segformer-b2", "binary", out, ("sd2", "sd35"), "robust")
    launched = config_from_args(TrainConfig, _parser().parse_args(command[command.index("train") + 1:]))
    assert launched == dataclasses.replace(expected, out=str(out))
    assert launched.poly_power == 0.5 and launched.progress is False and launched.eval_split is None


def test_generated_flags_work_for_other_dataclasses():
    @dataclasses.dataclass
    class Small:
        name: str
        size: int = 3
        tags: tuple[str, ...] = ()
        quiet: bool = False

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Small)
    small = config_from_args(Small, parser.parse_args(["--name", "x", "--tags", "a,b", "--quiet"]))
    assert small == Small("x", 3, ("a", "b"), True)
