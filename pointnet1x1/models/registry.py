"""The model registry: entries declared where each model is defined (timm style).

``@register_model("pointnet", task="cls", recipe="paper")`` on a model class (or a
factory function) records what the model is: its task, its default input
channels, its default training recipe and the constructor arguments it accepts.
Callers ask :func:`model_info` instead of guessing from names or signatures;
checkpoints store the registered name and the constructor arguments, so a model
can be rebuilt from a checkpoint alone.

Tasks are plain strings: ``"cls"`` (logits ``(B, K)``) and ``"partseg"`` (per-point
part logits ``(B, P, N)`` of a model that also takes the object category) today.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is.

    Attributes:
        name: The registered name (``create_model(name)``).
        factory: The class or function that builds it.
        task: ``"cls"`` or ``"partseg"`` (what its output means).
        in_channels: Its default input channels (3: xyz; ``3 + F`` is accepted
            where the constructor takes ``in_channels``).
        recipe: The name of its default training recipe
            (``pointnet1x1.engine.config.RECIPES``).
        defaults: Constructor arguments this entry fixes (a user's value wins).
        arguments: The constructor arguments accepted; empty when any is.
    """

    name: str
    factory: Callable[..., nn.Module]
    task: str = "cls"
    in_channels: int = 3
    recipe: str = "paper"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    arguments: tuple[str, ...] = ()

    def create(self, **kwargs: Any) -> nn.Module:
        """Build the model; an argument it does not take is one ``ValueError`` line."""
        unknown = sorted(set(kwargs) - set(self.arguments)) if self.arguments else []
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise ValueError(
                f"model {self.name!r} ({self.task}) takes no argument{plural} "
                f"{', '.join(unknown)}; it accepts: {', '.join(self.arguments)}"
            )
        return self.factory(**{**self.defaults, **kwargs})


_MODELS: dict[str, ModelInfo] = {}


def _arguments(factory: Callable[..., Any]) -> tuple[str, ...]:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: accept anything
        return ()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params if p.kind in kinds)


def register_model(
    name: str,
    *,
    task: str = "cls",
    in_channels: int = 3,
    recipe: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[_F], _F]:
    """Decorator that registers a model class or factory under ``name``.

    Args:
        name: The name for :func:`create_model` (unique).
        task: What the model's output is: ``"cls"`` or ``"partseg"``.
        in_channels: Its default number of input channels.
        recipe: Its default training recipe (default: ``"paper"`` for
            classifiers, ``"partseg"`` for part segmenters).
        defaults: Constructor arguments fixed by this entry, e.g.
            ``{"msg": True}`` for a variant of one class.

    Example:
        >>> @register_model("tiny", task="cls")
        ... class Tiny(nn.Module): ...
    """
    if not isinstance(task, str) or not task:
        raise ValueError(f"task must be a non-empty string, got {task!r}")

    def wrap(fn: _F) -> _F:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        args = _arguments(fn)
        fixed = dict(defaults or {})
        bad = sorted(set(fixed) - set(args)) if args else []
        if bad:
            raise ValueError(f"{name!r}: defaults {bad} are not arguments of {fn}")
        _MODELS[name] = ModelInfo(
            name=name,
            factory=fn,
            task=task,
            in_channels=in_channels,
            recipe=recipe or ("partseg" if task == "partseg" else "paper"),
            defaults=fixed,
            arguments=args,
        )
        return fn

    return wrap


def list_models(task: str | None = None) -> list[str]:
    """Names accepted by :func:`create_model`, sorted (those of ``task`` only if given)."""
    return sorted(n for n, info in _MODELS.items() if task in (None, info.task))


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; an unknown name is one line listing the known."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(list_models())}"
        ) from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model, e.g. ``create_model("pointnet", num_classes=10)``.

    Raises:
        ValueError: For an unknown name (the message lists the known ones) or an
            argument the model does not take (the message lists those it takes).
    """
    return model_info(name).create(**kwargs)
