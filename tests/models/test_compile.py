"""The compiled model (torch.compile, as benchmarks/bench_gpu.py uses it) computes
what the eager model computes (eval mode, CPU inductor; ~20 s the first time)."""

import pytest
import torch

from pointnet1x1 import PointNetClassifier


@pytest.mark.slow
def test_compiled_pointnet_equals_eager():
    torch.manual_seed(0)
    model = PointNetClassifier(num_classes=5, mlp2=(64, 128, 256), head=(64, 32))
    model(torch.randn(4, 3, 128))  # non-trivial BN statistics
    model.eval()
    compiled = torch.compile(model)
    x = torch.randn(3, 3, 128)
    with torch.no_grad():
        eager, fast = model(x), compiled(x)
    assert (eager - fast).abs().max().item() < 1e-4
    assert torch.equal(eager.argmax(1), fast.argmax(1))
