"""Growing the trees of :mod:`detectors.estimation.boosting`: least squares, best-first, in numpy.

- each round fits a tree to the residuals, grown best-first (the leaf whose best split lowers the
  squared error most is split next) up to ``max_leaf_nodes`` leaves of at least ``min_samples_leaf``
  rows; a split is any threshold on a numerical feature with the missing rows on either side, or, for
  a categorical one, any prefix of its categories ordered by mean residual (the optimal two-way
  partition for squared error); a leaf's value is its mean residual times the learning rate;
- a node's histograms (residual sums and row counts per bin) are one ``bincount`` over its rows and
  features; a child's are its parent's minus its smaller sibling's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors.estimation.boosting import KEY_BITS, MISSING, WIDTH, Booster, Codes, FloatArray, Tree


@dataclass(frozen=True)
class _Split:
    """A node's best split: numerical codes up to ``last`` (and missing ones if ``missing_left``), or the
    categorical codes ``categories``, go left."""

    gain: float
    feature: int
    last: int = -1
    missing_left: bool = False
    categories: NDArray[np.intp] | None = None

    def goes_left(self, codes: Codes) -> NDArray[np.bool_]:
        """Which of ``codes`` go left; a numerical split compares (a table look-up would cast every code)."""
        if self.categories is not None:
            return self.table().take(codes)
        go = codes <= self.last
        return go | (codes == MISSING) if self.missing_left else go

    def table(self) -> NDArray[np.bool_]:
        """Over all codes: goes left or not."""
        table = np.zeros(WIDTH, dtype=bool)
        if self.categories is not None:
            table[self.categories] = True
        else:
            table[: self.last + 1] = True
            table[MISSING] = self.missing_left
        return table


@dataclass(eq=False)
class _Node:
    rows: NDArray[np.intp]
    hist: FloatArray  # (2, features, WIDTH): residual sums and row counts per bin
    split: _Split | None = None
    children: tuple[_Node, _Node] | None = None


@dataclass(eq=False)
class _Fit:
    """One model being fitted: its root's histograms and its trees."""

    root: FloatArray
    trees: list[Tree]


class _Grower:
    """Grows the trees of several models on the same binned rows, all models in step.

    In step, each operation on small arrays (histograms, split search) runs once for all models instead
    of once per model: in numpy that per-call cost, not the arithmetic, is most of a fit. The root's
    histograms are not recounted for each tree: its counts never change, and its residual sums change
    by each leaf's value times the leaf's counts.
    """

    def __init__(self, codes: Codes, categorical: Sequence[bool], max_leaf_nodes: int, min_samples_leaf: int):
        if not 2 <= max_leaf_nodes <= KEY_BITS + 1:
            raise ValueError(f"max_leaf_nodes must be 2..{KEY_BITS + 1}")
        if min_samples_leaf < 1:
            raise ValueError("min_samples_leaf must be at least 1")
        codes = np.ascontiguousarray(codes)  # a row of codes[:, rows] is strided: gathers from it are slow
        self.codes = codes
        self.features = codes.shape[0]
        self.flat = (codes + (np.arange(self.features, dtype=np.uint16) * WIDTH)[:, None]).astype(
            np.uint16
        )  # small: in cache
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.categorical = np.array([f for f in range(self.features) if categorical[f]], dtype=np.intp)
        self.numerical = np.array([f for f in range(self.features) if not categorical[f]], dtype=np.intp)
        self.all_rows = np.arange(codes.shape[1])
        self.residuals = np.empty((0, codes.shape[1]))  # (models, rows): prediction minus target
        # the split search tries missing rows on the left only where some are missing
        self.missing = bool(self.numerical.size) and bool((codes[self.numerical] == MISSING).any())

    def histograms(self, parts: Sequence[tuple[NDArray[np.intp], int]]) -> FloatArray:
        """(parts, 2, features, WIDTH) histograms of each ``(rows, model)``, in one pass over all parts.

        ``take`` rather than fancy indexing: several times faster for a gather along one axis.
        """
        size, count = self.features * WIDTH, len(parts)
        sizes = [rows.size for rows, _ in parts]
        rows = np.concatenate([rows for rows, _ in parts])
        part = np.repeat(np.arange(count) * size, sizes)
        index = (self.flat.take(rows, axis=1) + part).ravel()  # part, feature, code
        model = np.repeat([m * self.all_rows.size for _, m in parts], sizes)
        weights = np.tile(self.residuals.take(model + rows), self.features)
        out = np.empty((2, count * size))
        out[0] = np.bincount(index, weights=weights, minlength=count * size)
        out[1] = np.bincount(index, minlength=count * size)
        return out.reshape(2, count, self.features, WIDTH).swapaxes(0, 1)

    def best_splits(self, nodes: Sequence[_Node]) -> list[_Split | None]:
        """Each node's best split (None when no split leaves ``min_samples_leaf`` rows on both sides).

        Candidates, as (sums, counts) of the left side per code position: each numerical feature with its
        missing rows going right, then left; each categorical feature's categories in order of mean
        residual. All nodes are scored together.
        """
        hist = np.stack([node.hist for node in nodes])  # (nodes, 2, features, WIDTH)
        groups = []
        if self.numerical.size:
            present = np.cumsum(hist[:, :, self.numerical], axis=3)  # the missing code is last: goes right
            groups.append(present)
            if self.missing:
                groups.append(present + hist[:, :, self.numerical, MISSING:])  # missing rows go left
        order = np.empty((len(nodes), 0, WIDTH), dtype=np.intp)
        if self.categorical.size:
            sums, counts = hist[:, 0, self.categorical], hist[:, 1, self.categorical]
            order = np.argsort(np.where(counts > 0, sums / counts, np.inf), axis=2, kind="stable")
            groups.append(np.cumsum(np.take_along_axis(hist[:, :, self.categorical], order[:, None], axis=3), axis=3))
        left = np.concatenate(groups, axis=2)  # (nodes, 2, candidates, WIDTH)
        rows = np.array([float(node.rows.size) for node in nodes])[:, None, None]
        total = hist[:, 0, 0].sum(axis=1)[:, None, None]
        left_sum, left_rows = left[:, 0], left[:, 1]
        right_sum, right_rows = total - left_sum, rows - left_rows
        score = left_sum * left_sum / left_rows + right_sum * right_sum / right_rows
        score[(left_rows < self.min_samples_leaf) | (right_rows < self.min_samples_leaf)] = -np.inf
        flat = score.reshape(len(nodes), -1)
        best = np.argmax(flat, axis=1)
        parent = (total * total / rows).ravel()
        gains = (flat[np.arange(len(nodes)), best] - parent).tolist()
        splits: list[_Split | None] = []
        numerical = self.numerical.size
        numerical_candidates = numerical * (2 if self.missing else 1)
        for i, gain in enumerate(gains):
            if not math.isfinite(gain) or gain <= 1e-12 * (parent[i] + 1.0):
                splits.append(None)
                continue
            candidate, position = divmod(int(best[i]), WIDTH)
            if candidate < numerical_candidates:
                feature = int(self.numerical[candidate % numerical])
                splits.append(_Split(gain, feature, position, candidate >= numerical))
            else:
                candidate -= numerical_candidates
                categories = order[i, candidate, : position + 1]
                splits.append(_Split(gain, int(self.categorical[candidate]), categories=categories))
        return splits

    def grow(self, fits: Sequence[_Fit], learning_rate: float) -> None:
        """One more tree for each model: best-first splits, every model's next split in the same step."""
        roots = [_Node(self.all_rows, fit.root.copy()) for fit in fits]
        for root, split in zip(roots, self.best_splits(roots), strict=True):
            root.split = split
        leaves = [[root] for root in roots]
        while True:
            chosen: list[tuple[int, _Node, tuple[NDArray[np.intp], NDArray[np.intp]], int]] = []
            for m, own in enumerate(leaves):
                candidates = [leaf for leaf in own if leaf.split is not None]
                if len(own) >= self.max_leaf_nodes or not candidates:
                    continue
                node = max(candidates, key=lambda leaf: leaf.split.gain if leaf.split else 0.0)
                split = node.split
                assert split is not None
                go = split.goes_left(self.codes[split.feature].take(node.rows))
                parts = node.rows.compress(go), node.rows.compress(~go)
                chosen.append((m, node, parts, 0 if parts[0].size <= parts[1].size else 1))
            if not chosen:
                break
            smaller = self.histograms([(parts[small], m) for m, _, parts, small in chosen])
            children: list[_Node] = []
            for (m, node, parts, small), small_hist in zip(chosen, smaller, strict=True):
                hists = (small_hist, node.hist - small_hist) if small == 0 else (node.hist - small_hist, small_hist)
                node.children = (_Node(parts[0], hists[0]), _Node(parts[1], hists[1]))
                leaves[m].remove(node)
                leaves[m].extend(node.children)
                children.extend(node.children)
            for child, split in zip(children, self.best_splits(children), strict=True):
                child.split = split
        step = np.empty(self.all_rows.size)
        for m, (fit, root) in enumerate(zip(fits, roots, strict=True)):
            tree, tree_leaves = _tree(root, learning_rate)
            counts = np.stack([leaf.hist[1] for leaf in tree_leaves])
            fit.root[0] += np.tensordot(tree.value, counts, axes=1)
            step.put(
                np.concatenate([leaf.rows for leaf in tree_leaves]),
                np.repeat(tree.value, [leaf.rows.size for leaf in tree_leaves]),
            )  # the leaves hold every row once
            self.residuals[m] += step
            fit.trees.append(tree)


def _tree(root: _Node, learning_rate: float) -> tuple[Tree, list[_Node]]:
    """The grown nodes as a :class:`Tree` (internal nodes numbered depth first), and its leaves in order."""
    internal: list[_Node] = []
    leaves: list[_Node] = []
    refs: dict[int, int] = {}

    def number(node: _Node) -> None:
        if node.children is None:
            refs[id(node)] = -1 - len(leaves)
            leaves.append(node)
            return
        refs[id(node)] = len(internal)
        internal.append(node)
        for child in node.children:
            number(child)

    number(root)
    splits = [node.split for node in internal if node.split is not None]
    pairs = [node.children for node in internal if node.children is not None]
    hist = np.stack([leaf.hist[:, 0] for leaf in leaves]).sum(axis=2)  # (leaves, 2): residual sum, rows
    tree = Tree(
        feature=np.array([split.feature for split in splits], dtype=np.int16),
        goes_left=np.array([split.table() for split in splits], dtype=bool).reshape(len(internal), WIDTH),
        left=np.array([refs[id(pair[0])] for pair in pairs], dtype=np.int16),
        right=np.array([refs[id(pair[1])] for pair in pairs], dtype=np.int16),
        value=-learning_rate * hist[:, 0] / hist[:, 1],  # the mean residual, from the histograms
    )
    return tree, leaves


def fit_boosters(
    codes: Codes,
    targets: Sequence[FloatArray],
    categorical: Sequence[bool],
    *,
    max_iter: int = 50,
    learning_rate: float = 0.2,
    max_leaf_nodes: int = 15,
    min_samples_leaf: int = 100,
) -> list[Booster]:
    """A model per target, each ``max_iter`` trees fitted by least squares to binned rows ``codes``.

    ``codes`` is (features, rows), from :meth:`Binning.codes`; ``categorical[f]`` says whether feature
    ``f`` is categorical. Fitting several targets at once is faster than one by one, with the same result.
    """
    grower = _Grower(codes, categorical, max_leaf_nodes, min_samples_leaf)
    if not targets:
        return []
    baselines = [float(np.mean(target)) for target in targets]
    # prediction minus target, one row per model
    grower.residuals = np.array([b - np.asarray(t, dtype=np.float64) for b, t in zip(baselines, targets, strict=True)])
    roots = grower.histograms([(grower.all_rows, m) for m in range(len(targets))])
    fits = [_Fit(root.copy(), []) for root in roots]
    with np.errstate(invalid="ignore", divide="ignore"):  # a split leaving no row on a side scores -inf
        for _ in range(max_iter):
            grower.grow(fits, learning_rate)
    return [Booster(b, codes.shape[0], tuple(fit.trees)) for b, fit in zip(baselines, fits, strict=True)]


def fit_booster(
    codes: Codes,
    target: FloatArray,
    categorical: Sequence[bool],
    *,
    max_iter: int = 50,
    learning_rate: float = 0.2,
    max_leaf_nodes: int = 15,
    min_samples_leaf: int = 100,
) -> Booster:
    """:func:`fit_boosters` for one target."""
    return fit_boosters(
        codes,
        [target],
        categorical,
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf,
    )[0]
