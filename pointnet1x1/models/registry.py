"""A small model registry: ``create_model(name, **kwargs)`` and ``list_models()``.

Checkpoints store the registered name and the constructor arguments, so a model
can be rebuilt from a checkpoint alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_F = TypeVar("_F", bound=Callable[..., nn.Module])


def register_model(name: str) -> Callable[[_F], _F]:
    """Decorator that registers a model class or factory under ``name``."""

    def wrap(fn: _F) -> _F:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model, e.g. ``create_model("pointnet", num_classes=10)``.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    try:
        factory = _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(list_models())}"
        ) from None
    return factory(**kwargs)
