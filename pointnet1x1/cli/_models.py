"""List the pretrained models installed with the package and the model architectures.

A pretrained model is used by ``pointnet1x1 classify FILE...`` when no checkpoint
is given and by ``Classifier.pretrained(name)`` in Python; its figures are the
test figures re-measured from the installed file (see ``pointnet1x1.weights``).
The architectures are those ``train --model`` accepts, with their task, input
channels and default recipe.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _pretrained() -> list[dict[str, object]]:
    from pointnet1x1.weights import PRETRAINED, pretrained_info

    return [pretrained_info(name) for name in PRETRAINED]


def _architectures() -> list[dict[str, object]]:
    from pointnet1x1.models import list_models, model_info

    return [
        {
            "name": name,
            "task": model_info(name).task,
            "in_channels": model_info(name).in_channels,
            "recipe": model_info(name).recipe,
        }
        for name in list_models()
    ]


def _pct(block: object, key: str) -> str:
    value = block.get(key) if isinstance(block, dict) else None
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "?"


def run(args: argparse.Namespace) -> int:
    pretrained, architectures = _pretrained(), _architectures()
    if args.json:
        print(
            json.dumps(
                {"pretrained": pretrained, "architectures": architectures}, indent=1
            )
        )
        return 0
    print("pretrained (pointnet1x1 classify FILE..., Classifier.pretrained(name)):")
    for info in pretrained:
        test, vote = info.get("test", {}), info.get("test_vote", {})
        data = info.get("data", {})
        points = data.get("points", "?") if isinstance(data, dict) else "?"
        votes = vote.get("votes", "?") if isinstance(vote, dict) else "?"
        root = data.get("root", "?") if isinstance(data, dict) else "?"
        print(
            f"  {info['name']}: {info.get('model', '?')} on {root}, "
            f"{points} points; test OA {_pct(test, 'oa')}, mAcc {_pct(test, 'macc')}; "
            f"{votes}-rotation vote OA {_pct(vote, 'oa')}, "
            f"mAcc {_pct(vote, 'macc')}; recipe {info.get('recipe', '?')}, "
            f"{info.get('weights', '?')} weights, {float(str(info['file_bytes'])) / 1e6:.1f} MB"
        )
        if info.get("license"):
            print(f"    {info['license']}")
    print("architectures (pointnet1x1 train --model NAME):")
    for arch in architectures:
        print(
            f"  {arch['name']:<18} task {arch['task']:<8} in_channels "
            f"{arch['in_channels']}  recipe {arch['recipe']}"
        )
    return 0
