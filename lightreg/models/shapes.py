"""Feature-map sizes of the CNN's conv blocks, computed without torch.

One source for the arithmetic: :class:`~lightreg.models.cnn.CNNClassifier` builds its layers
from it, and the recipe schema and linter (which never import torch) check recipes with it.

Example:
    >>> [shape.size for shape in block_shapes((8, 8), [3, 3], convs_per_block=2)]
    [(8, 8), (4, 4)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Length of one spatial axis after a convolution (as ``nn.Conv1d`` documents it).

    Example:
        >>> conv_output_size(40, 5, stride=2, padding=1)  # the paper's ConvBase, first layer
        19
    """
    return (size + 2 * padding - kernel_size) // stride + 1


class BlockShape(NamedTuple):
    """One conv block's map: its size after the convolutions, and whether it is then pooled.

    Example:
        >>> BlockShape((8, 8), pooled=False).output
        (8, 8)
    """

    size: tuple[int, ...]
    pooled: bool

    @property
    def output(self) -> tuple[int, ...]:
        """The size the next block reads: halved by a max-pool of 2, if there is one.

        Example:
            >>> BlockShape((5, 4), pooled=True).output
            (2, 2)
        """
        return tuple(n // 2 for n in self.size) if self.pooled else self.size


def block_shapes(
    image_size: Sequence[int],
    kernels: Sequence[int],
    *,
    convs_per_block: int,
    stride: int = 1,
    padding: int | None = None,
    pool: bool = True,
) -> list[BlockShape]:
    """The map of each conv block (one per kernel) for an input of ``image_size``.

    Each block has ``convs_per_block`` convolutions, the first with ``stride``; ``padding`` None
    is ``kernel // 2``. A block is max-pooled by 2 when ``pool`` and its every side is >= 2.

    Raises:
        ValueError: when a block's convolutions shrink the input to nothing.

    Example:
        >>> block_shapes((40,), [5, 3, 3], convs_per_block=1, stride=2, padding=1, pool=False)
        [BlockShape(size=(19,), pooled=False), BlockShape(size=(10,), pooled=False), BlockShape(size=(5,), pooled=False)]
    """
    sizes, shapes = tuple(image_size), []
    for index, kernel in enumerate(kernels):
        pad = kernel // 2 if padding is None else padding
        for step in range(convs_per_block):
            sizes = tuple(
                conv_output_size(n, kernel, stride if step == 0 else 1, pad) for n in sizes
            )
        if min(sizes) < 1:
            raise ValueError(
                f"conv block {index + 1} shrinks the input to 0 (image_size "
                f"{tuple(image_size)}); use a smaller kernel_size or stride, more padding, "
                "or fewer blocks"
            )
        shapes.append(BlockShape(sizes, pooled=pool and min(sizes) >= 2))
        sizes = shapes[-1].output
    return shapes


def residual_padding_problem(kernels: Sequence[int], padding: int | None) -> str | None:
    """Why residual blocks cannot have these convolutions, or None when they can.

    A residual block adds its input to its output, so every convolution must keep the map's
    size (up to the first one's stride, which the shortcut copies): ``2 * padding == kernel - 1``.

    Example:
        >>> residual_padding_problem([3, 5], None) is None  # padding kernel // 2, odd kernels
        True
        >>> residual_padding_problem([5], 0).split(";")[0]
        'kernel_size 5 with padding 0 changes the map size, which a residual block cannot add to its input'
    """
    for kernel in kernels:
        pad = kernel // 2 if padding is None else padding
        if 2 * pad != kernel - 1:
            return (
                f"kernel_size {kernel} with padding {pad} changes the map size, which a residual "
                "block cannot add to its input; use odd kernel sizes with padding null "
                "(kernel_size // 2)"
            )
    return None
