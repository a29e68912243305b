"""Where a depth cuts the backbone, and the frozen / trainable models on each side.

At depth k the top k layers train; everything below the cut is frozen and,
with the backbone in inference mode, computes the same activations for an
image in every epoch of every trial. Inside a residual block more than one
tensor crosses the cut (the block's input reaches its ``add`` as well), so
activations are cached at *cache points*: cuts crossed by a single tensor
that is smaller than its single-tensor neighbours (the narrow tensors
between blocks; for MobileNetV2 the block boundaries 3, 11, 20, 29, 38, ...).
A depth uses the nearest cache point at or below its cut and runs the few
frozen layers between the two live: one cached tensor then serves every
depth of a block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import keras

POOLED = -1  # cache point of the head phase: the backbone's output, globally averaged
IMAGES = "images"  # the cut is at the input: nothing is frozen, nothing to cache


@dataclass(frozen=True)
class CachePoint:
    depth: int  # the cut this tensor crosses
    layer: str  # the layer producing it ("images" at the input)
    shape: tuple[int, ...]  # per image

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


class BackboneCuts:
    """The cut structure of one backbone (layer list and graph, not weights)."""

    def __init__(self, backbone: keras.Model):
        self.backbone = backbone
        self.layers = list(backbone.layers)
        self.n = len(self.layers)
        self._producer = {}
        self._placed = list(enumerate(self.layers))  # (depth index, operation), bare ones too
        # Keras 3 exports no walk of a functional model's graph by tensor: its private
        # ``_inbound_nodes`` (each call's input and output tensors) is the one reach-in, here and
        # below. It broke once already (MobileNetV3's bare operations); tests/test_freezing.py
        # (test_every_cache_point_reproduces_the_backbone) guards it for every backbone.
        for i, layer in self._placed:
            for node in layer._inbound_nodes:
                for t in node.output_tensors:
                    self._producer[id(t)] = i
        self._place_bare_operations(backbone)
        self._placed.sort(key=lambda placed: placed[0])  # layers keep their order among equals

    def _place_bare_operations(self, backbone: keras.Model) -> None:
        """Give the tensors of operations that are not layers (MobileNetV3's ``x + 3``, ``x * y``)
        the depth of their latest input: they run where that input is, and without this the
        full backbone's cut (the images) seemed crossed by them, and had no cache point."""
        layer_ids = {id(layer) for layer in self.layers}
        bare = [op for op in backbone.operations if id(op) not in layer_ids]
        while bare:  # in an order where each one's inputs are placed first
            waiting = []
            for op in bare:
                nodes = op._inbound_nodes
                inputs = [id(t) for node in nodes for t in node.input_tensors]
                if any(i not in self._producer for i in inputs):
                    waiting.append(op)
                    continue
                place = max(self._producer[i] for i in inputs)
                self._placed.append((place, op))
                for node in nodes:
                    for t in node.output_tensors:
                        self._producer[id(t)] = place
            if len(waiting) == len(bare):
                break  # an input no layer produces: leave these unplaced, as before
            bare = waiting

    def crossing(self, depth: int) -> list:
        """The tensors that cross the cut at ``depth`` (produced below, used above)."""
        if depth == 0:
            return [self.backbone.output]
        top = set(range(self.n - depth, self.n))
        out, seen = [], set()
        for _, op in (placed for placed in self._placed if placed[0] in top):
            for node in op._inbound_nodes:
                for t in node.input_tensors:
                    if self._producer.get(id(t)) not in top and id(t) not in seen:
                        seen.add(id(t))
                        out.append(t)
        return out

    @cached_property
    def cache_points(self) -> dict[int, CachePoint]:
        single = {}
        for d in range(self.n + 1):
            c = self.crossing(d)
            if not c or c[0] is self.backbone.input:
                single[d] = CachePoint(d, IMAGES, tuple(self.backbone.input.shape[1:]))
                continue
            if len(c) == 1:
                t = c[0]
                single[d] = CachePoint(d, self.layers[self._producer[id(t)]].name, tuple(t.shape[1:]))
        # Runs of equal size along the depth; a run smaller than both its
        # neighbouring runs is a valley: those are the narrow tensors.
        runs: list[list[CachePoint]] = []
        for d in sorted(single):
            if runs and runs[-1][0].elements == single[d].elements:
                runs[-1].append(single[d])
            else:
                runs.append([single[d]])
        points = {}
        for i, run in enumerate(runs):
            size = run[0].elements
            lower = runs[i - 1][0].elements if i else math.inf
            upper = runs[i + 1][0].elements if i + 1 < len(runs) else math.inf
            if run[0].layer == IMAGES or size < min(lower, upper):
                points.update((p.depth, p) for p in run)
        return points

    def cache_point_for(self, depth: int) -> CachePoint | None:
        """The nearest cache point at or below the cut of ``depth`` (None: depth 0, the pooled features)."""
        if depth == 0:
            return None
        return next(self.cache_points[d] for d in sorted(self.cache_points) if d >= depth)

    def _tensor(self, point: CachePoint):
        if point.layer == IMAGES:
            return self.backbone.input
        return self.crossing(point.depth)[0]

    def prefix(self, points: list[CachePoint]) -> keras.Model:
        """Images -> the tensors at ``points`` (one forward pass fills several caches)."""
        return keras.Model(self.backbone.input, [self._tensor(p) for p in points])

    def suffix(self, point: CachePoint) -> keras.Model:
        """The tensor at ``point`` -> the backbone's output, sharing the backbone's layers."""
        if point.layer == IMAGES:
            return self.backbone
        return keras.Model(self._tensor(point), self.backbone.output)
