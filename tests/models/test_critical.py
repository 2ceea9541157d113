"""Critical points against independent derivations: a naive loop over the pooled
features, autograd, and the max pool's invariance (paper, Theorem 2)."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch
from torch import nn

from pointnet1x1.models import PointNet2Classifier, PointNetClassifier
from pointnet1x1.models.critical import critical_points, render_critical_points

WIDTHS = dict(mlp1=(16, 16), mlp2=(16, 32, 64), head=(32, 16))


def _model(transforms: bool, seed: int = 0) -> PointNetClassifier:
    torch.manual_seed(seed)
    model = PointNetClassifier(
        5, input_transform=transforms, feature_transform=transforms, **WIDTHS
    )
    for m in model.modules():  # batch norm statistics of a trained model, not 0 / 1
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _cloud(n: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)


def _pooled_input(model: PointNetClassifier, cloud: np.ndarray) -> torch.Tensor:
    """What the max pool sees, caught with a hook on the encoder's last shared MLP."""
    seen = []
    hook = model.encoder.mlp2.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model(torch.from_numpy(cloud).T.unsqueeze(0))
    hook.remove()
    return seen[0][0]  # (C_global, N)


def _global(model: PointNetClassifier, cloud: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(cloud).T.unsqueeze(0)
        return model.forward_features(x).global_feature[0].numpy()


@pytest.mark.parametrize("transforms", [False, True])
def test_winners_match_a_loop_over_the_pooled_features(transforms):
    model, cloud = _model(transforms), _cloud()
    result = critical_points(model, cloud)
    feats = _pooled_input(model, cloud).tolist()
    expected = []
    for channel in feats:  # the definition, one channel at a time
        best = max(channel)
        expected.append(-1 if min(channel) == best else channel.index(best))
    assert result.winners.tolist() == expected
    assert result.indices.tolist() == sorted({w for w in expected if w >= 0})
    assert result.num_critical == len(result.indices) > 0
    np.testing.assert_allclose(result.global_feature, _global(model, cloud), atol=0)
    assert result.to_dict()["num_critical"] == result.num_critical


def test_gradient_of_the_global_feature_reaches_exactly_the_critical_points():
    # without T-Nets a point's features depend on that point alone, so the gradient
    # of the pooled sum flows back only through the winners of the max pool
    model, cloud = _model(False), _cloud(200, 1)
    x = torch.from_numpy(cloud).T.unsqueeze(0).requires_grad_(True)
    model.forward_features(x).global_feature.sum().backward()
    touched = np.flatnonzero(x.grad[0].abs().sum(0).numpy() > 0)
    assert touched.tolist() == critical_points(model, cloud).indices.tolist()


def test_the_critical_set_alone_gives_the_same_global_feature():
    model, cloud = _model(False), _cloud(256, 2)
    result = critical_points(model, cloud)
    assert result.num_critical < len(cloud)  # something was dropped
    full = _global(model, cloud)
    np.testing.assert_allclose(_global(model, cloud[result.indices]), full, atol=1e-6)
    # dropping any one critical point changes the feature (it won a channel alone)
    for index in result.indices[:10]:
        without = np.delete(cloud, index, axis=0)
        changed = np.abs(_global(model, without) - full).max()
        assert changed > 1e-4, index
    # dropping a non-critical point does not
    other = np.setdiff1d(np.arange(len(cloud)), result.indices)[0]
    np.testing.assert_allclose(
        _global(model, np.delete(cloud, other, axis=0)), full, atol=1e-6
    )


def test_a_dead_channel_has_no_winner_and_modes_are_restored():
    model = _model(True)
    before = critical_points(model, _cloud()).winners
    c = int(np.flatnonzero(before >= 0)[0])  # a channel that has a winner
    convs = [m for m in model.encoder.mlp2.modules() if isinstance(m, nn.Conv1d)]
    last_conv = convs[-1]
    with torch.no_grad():  # channel c: negative before the ReLU for every point
        last_conv.weight[c] = 0
        last_conv.bias[c] = -10
    model.train()
    result = critical_points(model, _cloud())
    assert result.winners[c] == -1  # the other channels keep their winners
    assert np.array_equal(np.delete(result.winners, c), np.delete(before, c))
    assert model.training and model.encoder.training  # its mode is left as it was
    assert result.to_dict()["channels_without_winner"] >= 1


def test_bad_input_says_what_is_wrong():
    model = _model(False)
    with pytest.raises(ValueError, match=r"shape \(N, 3\).*\(3, 128\)"):
        critical_points(model, _cloud().T)
    with pytest.raises(ValueError, match="PointNet2Classifier"):
        critical_points(PointNet2Classifier(5), _cloud())
    with pytest.raises(ValueError, match="out of range"):
        render_critical_points(_cloud(10), critical_points(model, _cloud()), "x.png")


def test_render_highlights_the_critical_set(tmp_path):
    model, cloud = _model(False), _cloud(300, 3)
    result = critical_points(model, cloud)
    out = render_critical_points(cloud, result, tmp_path / "c.png", title="cloud")
    image = matplotlib.image.imread(out)
    assert image.shape[0] == 390 and image.shape[1] == 720  # 2 views of 3.6 x 3.9 in
    red = (image[..., 0] > 0.7) & (image[..., 1] < 0.4) & (image[..., 2] < 0.4)
    grey = (np.abs(image[..., 0] - image[..., 1]) < 0.02) & (image[..., 0] < 0.9)
    assert red.sum() > 50 and grey.sum() > 50
