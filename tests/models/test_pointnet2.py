"""PointNet++: parameter counts against the authors' code, shapes, gradients, and
set abstraction against a per-centroid loop."""

from __future__ import annotations

import pytest
import torch

from pointnet1x1.models import (
    PointNet2Classifier,
    PointNet2Segmenter,
    create_model,
    list_models,
)
from pointnet1x1.models.pointnet2 import FeaturePropagation, SetAbstraction
from pointnet1x1.nn import ball_query, farthest_point_sample


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _mlp(c_in: int, widths: list[int]) -> int:
    """Conv 1x1 with bias + batch norm (gamma, beta), as tf_util / yanx27."""
    total = 0
    for c_out in widths:
        total += c_in * c_out + c_out + 2 * c_out
        c_in = c_out
    return total


# FC 1024-512-256 with BN, then 256 -> 40: 524800+1024 + 131328+512 + 10280
_HEAD_40 = 667_944


def test_ssg_parameter_count_matches_authors():
    # pointnet2_cls_ssg.py on xyz: SA(512,0.2,32,[64,64,128]) 13,248
    # + SA(128,0.4,64,[128,128,256]) on 128+3: 67,456
    # + SA(all,[256,512,1024]) on 256+3: 727,040 + head 667,944 = 1,475,688
    assert _mlp(3, [64, 64, 128]) == 13_248
    assert _mlp(131, [128, 128, 256]) == 67_456
    assert _mlp(259, [256, 512, 1024]) == 727_040
    assert _count(create_model("pointnet2_ssg", num_classes=40)) == 1_475_688


def test_msg_parameter_count_matches_authors():
    # pointnet2_cls_msg.py on xyz: SA1 three branches on 3 channels
    # [32,32,64] 3,552 + [64,64,128] 13,248 + [64,96,128] 19,488 = 36,288 (out 320)
    # SA2 on 320+3: [64,64,128] 33,728 + 2 x [128,128,256] 92,032 = 217,792 (out 640)
    # SA3 on 640+3: 825,344; head 667,944; total 1,747,368
    sa1 = _mlp(3, [32, 32, 64]) + _mlp(3, [64, 64, 128]) + _mlp(3, [64, 96, 128])
    sa2 = _mlp(323, [64, 64, 128]) + 2 * _mlp(323, [128, 128, 256])
    sa3 = _mlp(643, [256, 512, 1024])
    assert (sa1, sa2, sa3) == (36_288, 217_792, 825_344)
    assert sa1 + sa2 + sa3 + _HEAD_40 == 1_747_368
    assert _count(create_model("pointnet2_msg", num_classes=40)) == 1_747_368


def test_partseg_parameter_count():
    # pointnet2_part_seg.py (xyz + normals): SA1 on 6 channels 13,440, SA2 67,456,
    # SA3 727,040, FP(1280,[256,256]) 394,752, FP(384,[256,128]) 132,224,
    # FP(128+6,[128,128,128]) 51,072, conv 128 + BN 16,768, conv 50 6,450
    # = 1,409,202 in the authors' code; the category one-hot adds 16 x 128 inputs
    # to the last FP (as their part_seg_msg_one_hot.py): 1,411,250.
    parts = [
        _mlp(6, [64, 64, 128]),
        _mlp(131, [128, 128, 256]),
        _mlp(259, [256, 512, 1024]),
        _mlp(1280, [256, 256]),
        _mlp(384, [256, 128]),
        _mlp(134, [128, 128, 128]),
        _mlp(128, [128]),
        128 * 50 + 50,
    ]
    assert sum(parts) == 1_409_202
    model = create_model("pointnet2_partseg", in_channels=6)
    assert _count(model) == 1_409_202 + 16 * 128
    assert _count(PointNet2Segmenter(in_channels=6, num_categories=0)) == 1_409_202


def test_registry_names():
    assert {"pointnet2_ssg", "pointnet2_msg", "pointnet2_partseg"} <= set(list_models())
    assert create_model("pointnet2_msg", num_classes=3).sa[0].radii == [0.1, 0.2, 0.4]


@pytest.mark.parametrize("msg", [False, True])
def test_classifier_forward_gradients_and_aux(msg):
    torch.manual_seed(0)
    model = PointNet2Classifier(5, in_channels=6, msg=msg, npoints=(16, 8))
    x = torch.randn(2, 6, 64)
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, 5) and aux.shape == () and aux.item() == 0
    logits.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert "npoint=16" in repr(model) and "SharedMLP2d(6, 64, 64, 128)" in repr(model)
    model.reset_classifier(7)
    assert model.eval()(x).shape == (2, 7)


def test_segmenter_forward_category_forms_and_gradients():
    torch.manual_seed(0)
    model = PointNet2Segmenter(
        num_parts=6, num_categories=3, in_channels=3, npoints=(32, 8), nsample=8
    )
    x = torch.randn(2, 3, 80)
    logits, aux = model(x, torch.tensor([0, 2]), return_aux=True)
    assert logits.shape == (2, 6, 80) and aux.item() == 0
    logits.mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    one_hot = torch.tensor([[1.0, 0, 0], [0, 0, 1]])
    torch.testing.assert_close(model(x, torch.tensor([0, 2])), model(x, one_hot))
    assert not torch.allclose(model(x, torch.tensor([0, 0])), model(x, one_hot))
    with pytest.raises(ValueError, match="needs the object category"):
        model(x)


def test_set_abstraction_matches_per_centroid_loop():
    torch.manual_seed(1)
    sa = SetAbstraction(6, [0.5, 0.9], [4, 7], [[8, 16], [8, 12]], in_channels=2).eval()
    xyz, feats = torch.rand(2, 30, 3), torch.randn(2, 2, 30)
    with torch.no_grad():
        for mlp in sa.mlps:  # non-trivial BN statistics
            for m in mlp.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-1, 1)
                    m.running_var.uniform_(0.5, 2)
        new_xyz, out = sa(xyz, feats)
    assert new_xyz.shape == (2, 6, 3) and out.shape == (2, 28, 6)
    linears = [mlp.to_linear() for mlp in sa.mlps]
    for b in range(2):
        centres = farthest_point_sample(xyz[b : b + 1], 6)[0]
        torch.testing.assert_close(new_xyz[b], xyz[b, centres])
        for s, c in enumerate(centres.tolist()):
            expected = []
            for radius, k, lin in zip(sa.radii, sa.nsamples, linears, strict=True):
                idx = ball_query(xyz[b : b + 1], xyz[b : b + 1, [c]], radius, k)[0, 0]
                rows = [torch.cat([xyz[b, j] - xyz[b, c], feats[b, :, j]]) for j in idx]
                with torch.no_grad():
                    expected.append(torch.stack([lin(r) for r in rows]).amax(0))
            torch.testing.assert_close(
                out[b, :, s], torch.cat(expected), atol=1e-5, rtol=1e-5
            )


def test_group_all_is_permutation_invariant_and_fp_shapes():
    sa = SetAbstraction(None, [], [], [[16, 32]], in_channels=4).eval()
    xyz, feats = torch.rand(2, 20, 3), torch.randn(2, 4, 20)
    perm = torch.randperm(20)
    with torch.no_grad():
        a = sa(xyz, feats)[1]
        b = sa(xyz[:, perm], feats[:, :, perm])[1]
    assert a.shape == (2, 32, 1)
    torch.testing.assert_close(a, b)
    fp = FeaturePropagation(32 + 4, [8])
    assert fp(xyz, torch.zeros(2, 1, 3), feats, a).shape == (2, 8, 20)


def test_small_inputs_and_errors():
    model = PointNet2Classifier(4, npoints=(32, 8))
    assert model(torch.randn(2, 3, 20)).shape == (2, 4)  # fewer points than centroids
    with pytest.raises(ValueError, match=r"expected points of shape \(B, 3, N\)"):
        model(torch.randn(2, 64, 3))
    with pytest.raises(ValueError, match="in_channels must be at least 3"):
        PointNet2Classifier(4, in_channels=2)


def test_custom_example_model_from_the_blocks():
    import runpy
    from pathlib import Path

    path = (
        Path(__file__).resolve().parents[2] / "examples" / "custom_pointnet2_style.py"
    )
    module = runpy.run_path(str(path))
    torch.manual_seed(0)
    model = module["TinyPointNet2"](10)
    logits = model(torch.randn(2, 3, 150))
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
