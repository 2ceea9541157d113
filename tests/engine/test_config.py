import dataclasses

import pytest
import torch

from pointnet1x1.engine.config import (
    RECIPES,
    TrainConfig,
    build_config,
    load_config_file,
)
from pointnet1x1.engine.trainer import schedule
from pointnet1x1.models import create_model


def _model_of(cfg, num_classes=40, in_channels=3):
    """The model the trainer would build (without loading any data)."""
    kwargs = {"num_classes": num_classes, "in_channels": in_channels}
    if cfg.dropout is not None:
        kwargs["dropout"] = cfg.dropout
    return create_model(cfg.model, **kwargs, **cfg.model_kwargs)


def test_paper_recipe_when_data_is_given():
    cfg = TrainConfig(data="somewhere").resolved()
    assert cfg.recipe == "paper"
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.num_points) == (
        "pointnet",
        250,
        32,
        1024,
    )
    assert (cfg.lr, cfg.optimizer, cfg.decay_step, cfg.lr_decay, cfg.min_lr) == (
        1e-3, "adam", 200_000, 0.7, 1e-5,
    )  # fmt: skip
    assert (cfg.bn_momentum, cfg.bn_momentum_decay, cfg.min_bn_momentum) == (
        0.5,
        0.5,
        0.01,
    )
    # dropout comes from the model's own default: PointNet's 0.3 (keep 0.7)
    model = _model_of(cfg)
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [pytest.approx(0.3)] * 2
    assert (cfg.rotate, cfg.jitter, cfg.jitter_clip, cfg.scale, cfg.shift) == (
        "up", 0.01, 0.05, None, None,
    )  # fmt: skip


def test_fast_recipe_without_data_and_explicit_values_win():
    cfg = TrainConfig().resolved()
    assert cfg.recipe == "fast"
    assert cfg.epochs == RECIPES["fast"]["epochs"]
    assert cfg.model == "pointnet_vanilla"
    assert cfg.threads == 1 and TrainConfig(data="d").resolved().threads == 0
    cfg = TrainConfig(epochs=3, model_kwargs={"head": [8, 4]}).resolved()
    assert cfg.epochs == 3
    assert cfg.model_kwargs["head"] == [8, 4]
    assert cfg.model_kwargs["mlp1"] == RECIPES["fast"]["model_kwargs"]["mlp1"]


def test_schedule_follows_the_authors_staircase():
    cfg = TrainConfig(data="x").resolved()
    assert schedule(cfg, 0, 1) == (1e-3, 0.5)
    lr, mom = schedule(cfg, 200_000, 7)
    assert lr == pytest.approx(7e-4) and mom == pytest.approx(0.25)
    lr, mom = schedule(cfg, 199_999, 7)
    assert lr == 1e-3 and mom == 0.5
    lr, mom = schedule(cfg, 10**9, 7)
    assert lr == 1e-5 and mom == 0.01  # floors: min lr and TF's 0.99 BN decay clip


def test_part_segmentation_recipe_decays_per_epoch_as_the_yanx27_port():
    # yanx27 train_partseg.py: lr = 0.001 * 0.5 ** (epoch // 20), BN 0.1 * 0.5 ** ...
    cfg = TrainConfig(task="partseg", data="x").resolved()
    assert (cfg.model, cfg.recipe, cfg.batch_size, cfg.num_points) == (
        "pointnet2_partseg", "partseg", 16, 2048,
    )  # fmt: skip
    assert (cfg.weight_decay, cfg.scale, cfg.shift, cfg.rotate) == (
        1e-4, [0.8, 1.25], 0.1, "none",
    )  # fmt: skip
    for epoch in (1, 20, 21, 41, 200):  # ours counts epochs from 1
        k = (epoch - 1) // 20
        lr, mom = schedule(cfg, 10**9, epoch)  # samples do not matter here
        assert lr == pytest.approx(max(1e-3 * 0.5**k, 1e-5))
        assert mom == pytest.approx(max(0.1 * 0.5**k, 0.01))
    # the model says its task: no --task needed, and a mismatch is one line
    assert TrainConfig(model="pointnet_partseg", data="x").resolved().task == "partseg"
    with pytest.raises(
        ValueError,
        match="'pointnet' is a cls model but the task is 'partseg'; choose one of: pointnet2_partseg, pointnet_partseg",
    ):
        TrainConfig(task="partseg", model="pointnet", data="x").resolved()
    # a decay_step given for a per-epoch recipe wins over the recipe's epochs
    own = TrainConfig(task="partseg", data="x", decay_step=100).resolved()
    assert (own.decay_step, own.decay_epochs) == (100, None)
    with pytest.raises(ValueError, match="decay_step .* or decay_epochs, not both"):
        TrainConfig(decay_step=1, decay_epochs=1).resolved()


def test_config_files_and_flags_precedence(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[train]\nepochs = 7\nlr = 0.5\nnum-points = 128\nclasses = ["a", "b"]\n'
    )
    cfg = build_config(toml, lr=0.25)
    assert (cfg.epochs, cfg.lr, cfg.num_points, cfg.classes) == (
        7,
        0.25,
        128,
        ["a", "b"],
    )
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("epochs: 9\nscale: [0.8, 1.25]\nshift: 0.1\n")
    cfg = build_config(yaml_file, epochs=None)  # None flags do not override
    assert (cfg.epochs, cfg.scale, cfg.shift) == (9, [0.8, 1.25], 0.1)


def test_config_errors_name_the_value(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("epoch = 3\n")
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['epoch'\]"):
        build_config(bad)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config_file(tmp_path / "missing.toml")
    txt = tmp_path / "c.txt"
    txt.write_text("x")
    with pytest.raises(ValueError, match="must be .toml, .yaml or .yml"):
        load_config_file(txt)
    (tmp_path / "broken.toml").write_text("epochs = [\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_config_file(tmp_path / "broken.toml")
    for field, value, message in [
        ("num_points", 0, "num_points must be positive, got 0"),
        ("epochs", -1, "epochs must be positive, got -1"),
        ("device", "tpu", "unknown device 'tpu'"),
        ("val_fraction", 1.0, "val_fraction must be in"),
        ("rotate", "x", "rotate must be"),
        ("threads", -1, "threads must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(TrainConfig(), **{field: value}).resolved()


def test_resolved_config_round_trips_through_a_dict():
    cfg = TrainConfig(data="d", classes=["a"]).resolved()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_fast_recipe_widths_only_for_its_own_model():
    default = TrainConfig().resolved()
    assert default.model_kwargs["mlp2"] == [32, 64, 256]
    other = TrainConfig(model="pointnet2_ssg").resolved()
    assert other.model_kwargs == {} and other.dropout is None
    model = _model_of(other, num_classes=10)  # PointNet++ keeps its own 0.5
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(p == pytest.approx(0.5) for p in drops)
    with pytest.raises(ValueError, match="dropout must be in"):
        TrainConfig(dropout=1.5).resolved()
