"""Observations of every common kind, for every deep learner: an adapter from the space, an encoder from the adapter.

Two halves, both built once from the observation space:

- :class:`ObservationAdapter` (numpy) turns what the env returns — an array, an int, a dict or a tuple, one
  observation or a vector env's batch — into one compact array per observation, which is what replay and
  rollout buffers store: images stay uint8, Discrete values stay indices, Dict and Tuple observations become
  one flat row.
- :class:`ObservationEncoder` (torch) turns a batch of those arrays into features: every image part goes
  through a CNN that fits its size (in either layout, HWC or CHW), every other part is one-hot encoded
  (Discrete, MultiDiscrete) or taken as numbers (Box, MultiBinary), and the concatenation of those goes through
  an MLP; the CNN features and the MLP features are concatenated.

:func:`observation_trunk` picks the trunk a learner puts before its heads: the plain MLP for a Box vector (as
it always was), the CNN alone for a lone image, an :class:`ObservationEncoder` for everything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.learners.common.networks import NatureCNN, SmallCNN, mlp

#: a learner's ``encoder`` field: how observations become features
EncoderName = Literal["auto", "mlp", "nature-cnn", "small-cnn"]
#: a learner's ``image_channels`` field: where an image's channel axis is
ImageChannels = Literal["auto", "last", "first"]
ENCODERS: tuple[str, ...] = get_args(EncoderName)
IMAGE_CHANNELS: tuple[str, ...] = get_args(ImageChannels)
#: the Nature CNN's 8/4, 4/2, 3/1 convolutions need at least this many pixels per side
NATURE_CNN_MIN_SIZE = 36
#: the small CNN's 3×3 convolution needs at least this many pixels per side
SMALL_CNN_MIN_SIZE = 3

_WAY_OUT = ("wrap the env with a gymnasium ObservationWrapper that maps it to a Box, Discrete, MultiDiscrete, "
            "MultiBinary, Dict or Tuple space")


def encoder_param() -> Any:
    """The ``encoder`` field every deep learner's config has (one definition, one docstring)."""
    return param("auto", "how observations become features: auto (images through the Nature CNN from 36 px a side, "
                         "else a small CNN; everything else one-hot or flattened into the MLP), mlp (images flattened "
                         "too), or one CNN for every image")


def image_channels_param() -> Any:
    """The ``image_channels`` field every deep learner's config has."""
    return param("auto", "channel axis of 3-D image observations: auto (the last axis when it is no larger than the "
                         "others, else the first), last (height×width×channels) or first (channels×height×width)")


@dataclass(frozen=True)
class Part:
    """One leaf of the observation space and where it lives in the stored array.

    ``kind`` is ``image`` (a Box the CNN reads), ``vector`` (a Box or MultiBinary taken as numbers) or
    ``categorical`` (Discrete or MultiDiscrete, stored as indices from 0 and one-hot encoded by the network).
    """

    kind: str
    name: str
    shape: tuple[int, ...]
    ndim: int
    byte: bool
    offset: int = 0
    nvec: tuple[int, ...] = ()
    start: Any = 0
    channels_last: bool = False
    scale: bool = False

    @property
    def size(self) -> int:
        """Columns the part takes in a flat stored row."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def input_width(self) -> int:
        """Numbers the part gives the MLP when it does not go through a CNN."""
        return int(sum(self.nvec)) if self.kind == "categorical" else self.size

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """The stored shape of an image part with its channel axis made explicit (a grayscale H×W is 1×H×W)."""
        return (1, *self.shape) if len(self.shape) == 2 else self.shape


def _channels_last(shape: tuple[int, ...], image_channels: str) -> bool | None:
    """Whether a 3-D Box is HWC (True), CHW (False), or not an image at all (None).

    The channel axis is the last axis when it is no larger than the other two (Gymnasium's usual layout),
    else the first axis when it is no larger than the other two; both spatial sides need at least
    :data:`SMALL_CNN_MIN_SIZE` pixels.
    """
    if image_channels == "last":
        last = True
    elif image_channels == "first":
        last = False
    elif shape[2] <= min(shape[:2]):
        last = True
    elif shape[0] <= min(shape[1:]):
        last = False
    else:
        return None
    spatial = shape[:2] if last else shape[1:]
    return last if min(spatial) >= SMALL_CNN_MIN_SIZE else None


def _box_part(space: Any, name: str, encoder: str, image_channels: str) -> Part:
    shape = tuple(int(d) for d in space.shape)
    byte = space.dtype in (np.uint8, np.bool_)
    layout = None
    if len(shape) == 3:
        layout = _channels_last(shape, image_channels)
    elif len(shape) == 2 and (space.dtype == np.uint8 or encoder in ("nature-cnn", "small-cnn")) \
            and min(shape) >= SMALL_CNN_MIN_SIZE:
        layout = False  # a grayscale frame: one channel
    if layout is None:
        return Part("vector", name, shape, len(shape), byte)
    return Part("image", name, shape, len(shape), byte, channels_last=layout, scale=space.dtype == np.uint8)


def _leaves(space: Any, name: str, encoder: str, image_channels: str, owner: str,
            ignored: list[str]) -> list[Part]:
    """The servable leaves of ``space`` in a fixed order (Dict keys in the space's order, Tuple by index)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return [p for key, sub in space.spaces.items()
                for p in _leaves(sub, f"{name}[{key!r}]" if name else repr(key), encoder, image_channels, owner, ignored)]
    if isinstance(space, spaces.Tuple):
        return [p for i, sub in enumerate(space.spaces)
                for p in _leaves(sub, f"{name}[{i}]", encoder, image_channels, owner, ignored)]
    if isinstance(space, spaces.Box):
        return [_box_part(space, name, encoder, image_channels)]
    if isinstance(space, spaces.Discrete):
        return [Part("categorical", name, (1,), 0, int(space.n) <= 256, nvec=(int(space.n),), start=int(space.start))]
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec)
        return [Part("categorical", name, nvec.shape, nvec.ndim, int(nvec.max()) <= 256,
                     nvec=tuple(int(n) for n in nvec.ravel()), start=np.asarray(space.start))]
    if isinstance(space, spaces.MultiBinary):
        return [Part("vector", name, tuple(space.shape), len(space.shape), True)]
    if _is_text(space) and name:
        ignored.append(name)  # free text (MiniGrid's mission) inside a Dict/Tuple: no learner here reads text
        return []
    raise UsageError(f"{owner} cannot serve the observation space {space}"
                     f"{' at ' + name if name else ''}; {_WAY_OUT}")


class ObservationAdapter:
    """Observations of ``space`` → the arrays a buffer stores: ``shape`` and ``dtype`` per observation.

    A Box is stored as it is (float32, or uint8 for uint8/bool images), a Discrete as its index; every other
    space (MultiDiscrete, MultiBinary, Dict, Tuple) as one flat row, uint8 when every part fits in a byte
    exactly, else float32. Calling the adapter keeps a vector env's leading batch axis.
    """

    def __init__(self, space: Any, encoder: str = "auto", image_channels: str = "auto", owner: str = "this learner") -> None:
        from gymnasium import spaces

        if encoder not in ENCODERS:
            raise UsageError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        if image_channels not in IMAGE_CHANNELS:
            raise UsageError(f"image_channels must be one of {', '.join(IMAGE_CHANNELS)}, got {image_channels!r}")
        self.space = space
        self.ignored: list[str] = []
        self.flat = not isinstance(space, (spaces.Box, spaces.Discrete))
        parts = _leaves(space, "", encoder, image_channels, owner, self.ignored)
        if not parts:
            raise UsageError(f"{owner} found nothing it can read in the observation space {space}; {_WAY_OUT}")
        offset, placed = 0, []
        for part in parts:
            placed.append(dataclasses.replace(part, offset=offset))
            offset += part.size
        self.parts = placed
        if isinstance(space, spaces.Discrete):
            self.shape, self.dtype = (), np.dtype(np.int64)
        elif isinstance(space, spaces.Box):
            byte_image = placed[0].kind == "image" and space.dtype in (np.uint8, np.bool_)
            self.shape, self.dtype = tuple(space.shape), np.dtype(np.uint8 if byte_image else np.float32)
        else:
            self.shape = (offset,)
            self.dtype = np.dtype(np.uint8 if all(p.byte for p in placed) else np.float32)
        #: a Box vector: the MLP reads the observation as it is (the path every learner had before adapters)
        self.plain = isinstance(space, spaces.Box) and placed[0].kind == "vector"

    @property
    def images(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "image"]

    def is_batch(self, stored: np.ndarray) -> bool:
        """Whether an adapted array holds a batch (a vector env's rows) rather than one observation."""
        return stored.ndim > len(self.shape)

    def __call__(self, observation: Any) -> np.ndarray:
        """The stored form of one observation (``shape``) or of a batch (``(n, *shape)``)."""
        if not self.flat:
            if self.parts[0].kind == "categorical":
                return np.asarray(observation, dtype=np.int64) - self.parts[0].start
            return np.asarray(observation, dtype=self.dtype)
        columns = []
        for part, value in zip(self.parts, _leaf_values(self.space, observation), strict=True):
            value = np.asarray(value)
            if part.kind == "categorical":
                value = value - part.start
            lead = value.shape[: value.ndim - part.ndim]  # () for one observation, (n,) for a vector env's batch
            columns.append(value.reshape(lead + (part.size,)))
        return np.concatenate(columns, axis=-1).astype(self.dtype, copy=False)


def _leaf_values(space: Any, observation: Any) -> list[Any]:
    """The values of the servable leaves of ``observation``, in the adapter's part order."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return [v for key, sub in space.spaces.items() for v in _leaf_values(sub, observation[key])]
    if isinstance(space, spaces.Tuple):
        return [v for i, sub in enumerate(space.spaces) for v in _leaf_values(sub, observation[i])]
    if _is_text(space):
        return []
    return [observation]


def _is_text(space: Any) -> bool:
    """A space of strings: Gymnasium's Text, or one like MiniGrid's MissionSpace."""
    dtype = getattr(space, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind in "US"


def image_cnn(part: Part, encoder: str = "auto") -> nn.Module:
    """The CNN for one image part: the Nature CNN from :data:`NATURE_CNN_MIN_SIZE` pixels a side, else the small one."""
    channels, height, width = part.frame_shape if not part.channels_last else (part.shape[2], *part.shape[:2])
    side = min(height, width)
    if encoder == "nature-cnn" and side < NATURE_CNN_MIN_SIZE:
        what = f"the observation's part {part.name}" if part.name else "the observation"
        raise UsageError(f"the nature-cnn encoder needs images of at least {NATURE_CNN_MIN_SIZE} pixels a side, "
                         f"{what} is {height}×{width}; use encoder=small-cnn or auto")
    nature = encoder == "nature-cnn" or (encoder == "auto" and side >= NATURE_CNN_MIN_SIZE)
    cls = NatureCNN if nature else SmallCNN
    return cls(part.frame_shape, channels_last=part.channels_last, scale=part.scale)


class ObservationEncoder(nn.Module):
    """Features of a batch of adapted observations: CNN features of every image part, then an MLP over the rest.

    With ``encoder="mlp"`` images are flattened into the MLP's input too (scaled to [0, 1] when uint8). With
    ``hidden=[]`` and no image through a CNN the encoder has no parameters: it only one-hot encodes and
    flattens (policy-gradient learners use that as the input of their separate policy and value MLPs).
    """

    def __init__(self, adapter: ObservationAdapter, hidden: Sequence[int], activation: str, encoder: str = "auto") -> None:
        super().__init__()
        self.flat = adapter.flat
        self.shape = adapter.shape
        self.parts = adapter.parts
        self.through_cnn = [p.kind == "image" and encoder != "mlp" for p in self.parts]
        self.cnns = nn.ModuleList(image_cnn(p, encoder) for p, cnn in zip(self.parts, self.through_cnn) if cnn)
        rest = sum(p.input_width for p, cnn in zip(self.parts, self.through_cnn) if not cnn)
        self.mlp = mlp(rest, None, hidden, activation) if rest else None
        self.out_dim = sum(c.out_dim for c in self.cnns) + ((hidden[-1] if hidden else rest) if rest else 0)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        n = observations.shape[0]
        features, rest = [], []
        cnns = iter(self.cnns)
        for part, cnn in zip(self.parts, self.through_cnn):
            value = observations[:, part.offset:part.offset + part.size] if self.flat else observations
            if cnn:
                features.append(next(cnns)(value.reshape(n, *part.shape)))
            elif part.kind == "categorical":
                index = value.reshape(n, -1).long()
                rest += [F.one_hot(index[:, j], k).float() for j, k in enumerate(part.nvec)]
            else:
                x = value.reshape(n, -1).float()
                rest.append(x / 255.0 if part.scale else x)
        if self.mlp is not None:
            features.append(self.mlp(torch.cat(rest, dim=1) if len(rest) > 1 else rest[0]))
        return torch.cat(features, dim=1) if len(features) > 1 else features[0]


def observation_trunk(adapter: ObservationAdapter, hidden: Sequence[int], activation: str,
                      encoder: str = "auto") -> tuple[nn.Module, int]:
    """A learner's feature extractor for ``adapter``'s observations and its output width.

    A Box vector gets the plain MLP (its input flattened by the learner, as always); a lone image its CNN
    (which reads the stored uint8 or float frame itself); every other space an :class:`ObservationEncoder`.
    """
    if adapter.plain:
        width = adapter.parts[0].size
        return mlp(width, None, hidden, activation), (hidden[-1] if hidden else width)
    if not adapter.flat and adapter.parts[0].kind == "image" and encoder != "mlp":
        cnn = image_cnn(adapter.parts[0], encoder)
        return cnn, cnn.out_dim
    body = ObservationEncoder(adapter, hidden, activation, encoder)
    return body, body.out_dim
