"""CTC prefix beam search on the host, as TensorFlow's ``ctc_beam_search_decoder`` (what Keras 3's
``ctc_decode(strategy="beam_search")`` runs on its TensorFlow backend), so the paths and scores agree.

A beam is a label prefix (a node of a prefix tree) with two log-probabilities: of the alignments ending in a
blank and of those ending in its last label. Each step first advances the surviving beams, then extends
them by one label; a new prefix enters only if it beats the weakest of the ``beam_width`` kept.
"""
from __future__ import annotations

__all__ = ["beam_search"]

import math

import numpy as np

_NEG = -math.inf


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG:
        return b
    if b == _NEG:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


class _Beam:
    __slots__ = ("parent", "label", "children", "new", "old")

    def __init__(self, parent: _Beam | None, label: int):
        self.parent, self.label = parent, label
        self.children: list[_Beam] | None = None
        self.new = [_NEG, _NEG, _NEG]   # total, blank, label
        self.old = [_NEG, _NEG, _NEG]

    def active(self) -> bool:
        return self.new[0] != _NEG

    def labels(self, merge_repeated: bool) -> list[int]:
        out, node = [], self
        while node.parent is not None:
            out.append(node.label)
            node = node.parent
        out.reverse()
        if merge_repeated:   # tf.compat.v1's decoder also collapses repeats of the decoded labels
            out = [c for i, c in enumerate(out) if i == 0 or c != out[i - 1]]
        return out


class _Leaves:
    """The kept beams, at most ``limit``; the weakest is found by a scan (beams are few)."""

    def __init__(self, limit: int):
        self.limit, self.items = limit, []

    def bottom(self) -> _Beam:
        return min(self.items, key=lambda e: e.new[0])

    def push(self, beam: _Beam) -> None:
        if len(self.items) == self.limit:
            self.items.remove(self.bottom())
        self.items.append(beam)

    def candidate(self, total: float) -> bool:
        return total > _NEG and (len(self.items) < self.limit or total > self.bottom().new[0])


def _decode_one(steps: np.ndarray, blank: int, beam_width: int, top_paths: int,
                merge_repeated: bool) -> tuple[list[list[int]], list]:
    root = _Beam(None, -1)
    root.new = [0.0, 0.0, _NEG]
    leaves = _Leaves(beam_width)
    leaves.push(root)
    labels = [c for c in range(steps.shape[-1]) if c != blank]
    for row in steps:
        top = row.max()
        x = row - (top + math.log(float(np.exp(row - top).sum())))   # log-softmax: TF scores log-probabilities
        branches = sorted(leaves.items, key=lambda e: -e.new[0])
        leaves = _Leaves(beam_width)
        for beam in branches:
            beam.old = list(beam.new)
        for beam in branches:   # the prefix stays: its last label repeats, or a blank follows
            if beam.parent is not None:
                if beam.parent.active():
                    p = beam.parent.old
                    beam.new[2] = _logaddexp(beam.new[2], p[1] if beam.label == beam.parent.label else p[0])
                beam.new[2] += float(x[beam.label])
            beam.new[1] = beam.old[0] + float(x[blank])
            beam.new[0] = _logaddexp(beam.new[1], beam.new[2])
            leaves.push(beam)
        for beam in branches:   # the prefix grows by one label
            if not leaves.candidate(beam.old[0]):
                continue
            if beam.children is None:
                beam.children = [_Beam(beam, c) for c in labels]
            for child in beam.children:
                if child.active():
                    continue
                before = beam.old[1] if child.label == beam.label else beam.old[0]
                child.new = [float(x[child.label]) + before, _NEG, float(x[child.label]) + before]
                if leaves.candidate(child.new[0]):
                    if len(leaves.items) == leaves.limit:
                        leaves.bottom().new = [_NEG, _NEG, _NEG]
                    leaves.push(child)
                else:
                    child.old = [_NEG, _NEG, _NEG]
                    child.new = [_NEG, _NEG, _NEG]
    best = sorted(leaves.items, key=lambda e: -e.new[0])
    if len(best) < top_paths:
        raise ValueError(f"ctc_decode: the beam search kept {len(best)} paths, fewer than the requested "
                         f"top_paths={top_paths} (too few time steps or classes for that many).")
    return [e.labels(merge_repeated) for e in best[:top_paths]], [e.new[0] for e in best[:top_paths]]


def beam_search(inputs: np.ndarray, sequence_lengths: np.ndarray, beam_width: int, top_paths: int,
                mask_index: int | None, merge_repeated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(decoded (top_paths, batch, max_time) int32 padded with -1, scores (batch, top_paths))`` of logits
    ``inputs`` ``(batch, max_time, classes)``; ``mask_index`` is the blank (``None``: the last class);
    ``merge_repeated`` collapses repeated labels of the decoded paths (tf.compat.v1's default, not Keras 3's)."""
    x = np.asarray(inputs)
    x = x.astype(np.float32) if x.dtype.kind != "f" or x.dtype == np.float16 else x
    batch, steps, classes = x.shape
    lengths = np.asarray(sequence_lengths).reshape(-1).astype(np.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"Argument `sequence_lengths` must hold one length per sample ({batch}). Received: "
                         f"sequence_lengths.shape={np.shape(sequence_lengths)}")
    if np.any(lengths < 0) or np.any(lengths > steps):
        raise ValueError(f"Argument `sequence_lengths` must be in [0, {steps}] (the time steps of `inputs`). "
                         f"Received: sequence_lengths={lengths.tolist()}")
    blank = classes - 1 if mask_index is None else int(mask_index) % classes
    decoded = np.full((top_paths, batch, steps), -1, np.int32)
    scores = np.zeros((batch, top_paths), x.dtype)
    for b in range(batch):
        paths, logps = _decode_one(x[b, :lengths[b]].astype(np.float64), blank, beam_width, top_paths,
                                   merge_repeated)
        for k, (path, logp) in enumerate(zip(paths, logps)):
            decoded[k, b, :len(path)] = path
            scores[b, k] = logp
    return decoded, scores
