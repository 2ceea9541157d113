import pytest
import torch

from pointnet1x1 import (
    PointNetClassifier,
    PointNetSegmenter,
    create_model,
    list_models,
)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_paper():
    # Paper (Qi et al. 2017, Table 6): 3.5M parameters with both T-Nets.
    full = PointNetClassifier(num_classes=40)
    assert _count(full) == 3_480_049
    assert abs(_count(full) - 3.5e6) / 3.5e6 < 0.01
    vanilla = create_model("pointnet_vanilla", num_classes=40)
    assert _count(vanilla) == 819_624  # about 0.8M without T-Nets
    # the 64x64 feature T-Net alone is the largest piece: 256 * 64 * 64 last layer
    assert full.encoder.feature_tnet.out.weight.shape == (64 * 64, 256)


def test_architecture_follows_the_authors_code():
    model = PointNetClassifier(num_classes=40)
    assert repr(model.encoder.mlp1) == "SharedMLP(3, 64, 64)"
    assert repr(model.encoder.mlp2) == "SharedMLP(64, 64, 128, 1024)"
    assert repr(model.head) == "SharedMLP(1024, 512, 256)"
    assert model.classifier.out_features == 40
    dropouts = [m for m in model.head.modules() if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in dropouts] == [pytest.approx(0.3)] * 2  # keep 0.7
    assert model.reg_weight == 0.001


def test_classifier_shapes_aux_and_gradients():
    torch.manual_seed(0)
    model = PointNetClassifier(num_classes=5)
    x = torch.randn(2, 3, 64)
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, 5) and aux.shape == ()
    assert aux.item() >= 0
    (torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])) + aux).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # the regulariser reaches the feature T-Net's last layer
    assert model.encoder.feature_tnet.out.weight.grad.abs().sum() > 0


def test_aux_is_the_weighted_orthogonality_of_the_feature_transform():
    model = PointNetClassifier(num_classes=3).eval()
    torch.nn.init.normal_(model.encoder.feature_tnet.out.weight, std=0.1)
    x = torch.randn(2, 3, 32)
    feats = model.forward_features(x)
    eye = torch.eye(64)
    a = feats.feature_transform
    expected = 0.001 * ((eye - a @ a.transpose(1, 2)) ** 2).sum(dim=(1, 2)).mean()
    _, aux = model(x, return_aux=True)
    assert torch.allclose(aux, expected)


def test_batch_size_one_in_eval_mode_and_normals():
    model = PointNetClassifier(num_classes=4, in_channels=6).eval()
    assert model(torch.randn(1, 6, 100)).shape == (1, 4)
    assert model.encoder.mlp1.in_channels == 6


def test_input_transform_rotates_normals_with_points():
    torch.manual_seed(1)
    model = PointNetClassifier(num_classes=4, in_channels=6).eval()
    rot = torch.linalg.qr(torch.randn(3, 3))[0]
    torch.nn.init.zeros_(model.encoder.input_tnet.out.weight)
    with torch.no_grad():
        model.encoder.input_tnet.out.bias.copy_(rot.flatten())
    x = torch.randn(2, 6, 20)
    # with a fixed T-Net matrix R, xyz and normals both become (x^T R)^T
    rotated = torch.cat([rot.T @ x[:, :3], rot.T @ x[:, 3:]], dim=1)
    local = model.encoder.mlp1(rotated)
    features = model.forward_features(x)
    plain = PointNetClassifier(num_classes=4, in_channels=6, input_transform=False)
    assert features.input_transform.shape == (2, 3, 3)
    assert plain.encoder.input_tnet is None
    # first local feature equals the MLP on the rotated input (before the feature T-Net)
    t_feat = features.feature_transform
    assert torch.allclose(
        torch.bmm(t_feat.transpose(1, 2), local), features.local_features[0], atol=1e-5
    )


def test_mask_ignores_padded_points():
    torch.manual_seed(2)
    model = PointNetClassifier(num_classes=3).eval()
    x = torch.randn(1, 3, 50)
    padded = torch.cat([x, torch.full((1, 3, 14), 100.0)], dim=2)
    mask = torch.zeros(1, 64, dtype=torch.bool)
    mask[:, :50] = True
    assert torch.allclose(model(padded, mask), model(x), atol=1e-5)


def test_wrong_input_shape_is_a_clear_error():
    model = PointNetClassifier(num_classes=3)
    with pytest.raises(
        ValueError, match=r"expected points of shape \(B, 3, N\), got \(2, 64, 3\)"
    ):
        model(torch.randn(2, 64, 3))


def test_reset_classifier():
    model = PointNetClassifier(num_classes=40)
    model.reset_classifier(10)
    assert model(torch.randn(2, 3, 16)).shape == (2, 10)


def test_segmenter_shapes_and_category():
    torch.manual_seed(3)
    seg = PointNetSegmenter(num_parts=50, num_categories=16)
    x = torch.randn(2, 3, 64)
    logits, aux = seg(x, torch.tensor([0, 15]), return_aux=True)
    assert logits.shape == (2, 50, 64)
    loss = (
        torch.nn.functional.cross_entropy(logits, torch.randint(0, 50, (2, 64))) + aux
    )
    loss.backward()
    for name, p in seg.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    seg.eval()
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 15]), 16)
    assert torch.allclose(seg(x, torch.tensor([0, 15])), seg(x, one_hot))
    with pytest.raises(ValueError, match="needs the object category"):
        seg(x)
    no_cat = PointNetSegmenter(num_parts=4, num_categories=0).eval()
    assert no_cat(torch.randn(1, 3, 32)).shape == (1, 4, 32)


def test_segmenter_is_equivariant_to_point_order():
    torch.manual_seed(4)
    seg = PointNetSegmenter(num_parts=6, num_categories=0).double().eval()
    x = torch.randn(1, 3, 40, dtype=torch.float64)
    perm = torch.randperm(40)
    assert torch.allclose(seg(x)[:, :, perm], seg(x[:, :, perm]), atol=1e-9)


def test_registry():
    assert {"pointnet", "pointnet_vanilla", "pointnet_partseg"} <= set(list_models())
    model = create_model("pointnet", num_classes=7)
    assert isinstance(model, PointNetClassifier) and model.num_classes == 7
    with pytest.raises(
        ValueError, match="unknown model 'nope'; choose one of: .*pointnet"
    ):
        create_model("nope")


def test_models_declare_what_they_are():
    from pointnet1x1.models import PointNet2Segmenter, model_info

    # other tests register their own models; the built-in ones are those of the package
    builtin = [n for n in list_models() if not n.startswith("test_")]
    tasks = {name: model_info(name).task for name in builtin}
    assert tasks == {
        "pointnet": "cls", "pointnet_vanilla": "cls", "pointnet2_ssg": "cls",
        "pointnet2_msg": "cls", "pointnet_partseg": "partseg",
        "pointnet2_partseg": "partseg",
    }  # fmt: skip
    assert [n for n in list_models("partseg") if not n.startswith("test_")] == [
        "pointnet2_partseg",
        "pointnet_partseg",
    ]
    assert model_info("pointnet").recipe == "paper"
    assert model_info("pointnet2_partseg").recipe == "partseg"
    assert model_info("pointnet2_partseg").factory is PointNet2Segmenter
    vanilla = create_model("pointnet_vanilla", num_classes=3)
    assert vanilla.encoder.input_tnet is None and vanilla.encoder.feature_tnet is None
    own = create_model("pointnet_vanilla", num_classes=3, input_transform=True)
    assert own.encoder.input_tnet is not None  # the caller's value wins
    # a segmenter takes no num_classes: one line naming what it does take
    with pytest.raises(ValueError) as info:
        create_model("pointnet_partseg", num_classes=10)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "model 'pointnet_partseg' (partseg) takes no argument num_classes; it "
        "accepts: num_parts, num_categories, in_channels, mlp1,"
    )


def test_register_model_records_the_entry_and_refuses_duplicates():
    from torch import nn

    from pointnet1x1.models import model_info, register_model

    name = "test_tiny_registered"
    if name not in list_models():

        @register_model(name, task="partseg", in_channels=6)
        class Tiny(nn.Module):
            def __init__(self, num_parts: int = 2, in_channels: int = 6) -> None:
                super().__init__()
                self.num_parts, self.in_channels = num_parts, in_channels

    info = model_info(name)
    assert (info.task, info.in_channels, info.recipe) == ("partseg", 6, "partseg")
    assert info.arguments == ("num_parts", "in_channels")
    assert create_model(name, num_parts=5).num_parts == 5
    with pytest.raises(
        ValueError, match=f"a model named '{name}' is already registered"
    ):
        register_model(name)(nn.Identity)
    with pytest.raises(ValueError, match="defaults \\['depth'\\] are not arguments"):

        class Fixed(nn.Module):
            def __init__(self, width: int = 2) -> None:
                super().__init__()

        register_model("test_bad_defaults", defaults={"depth": 3})(Fixed)


@pytest.mark.parametrize("channels", [4, 5, 7])
def test_extra_feature_channels_reach_the_network(channels):
    torch.manual_seed(5)
    model = PointNetClassifier(num_classes=3, in_channels=channels).eval()
    x = torch.randn(2, channels, 32)
    assert model(x).shape == (2, 3)
    changed = x.clone()
    changed[:, channels - 1] += 3.0  # the last feature channel is not dropped
    assert (model(changed) - model(x)).abs().max() > 1e-6


def test_max_pool_gradient_goes_to_the_argmax():
    from pointnet1x1.nn import global_max_pool

    x = torch.tensor([[[1.0, 5.0, 2.0]]], requires_grad=True)
    global_max_pool(x).sum().backward()
    assert x.grad.tolist() == [[[0.0, 1.0, 0.0]]]
