"""ROAD's noisy linear imputation (Rong et al., ICML 2022): every removed pixel becomes the
weighted mean of its 8 neighbours, solved for all removed pixels of an image at once (one sparse
linear system, scipy), plus a little noise. Unlike a zero, mean or blur fill it leaves no edge
at the mask's border, so the fill does not draw the mask's shape into the image.

Written here because no library we use implements it (captum, MONAI and torchvision do not).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

# ROAD's neighbour weights: 1/6 for the 4 direct neighbours, 1/12 for the 4 diagonal ones
NEIGHBOURS = ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6), (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12))


def impute(image: np.ndarray, keep: np.ndarray, noise: float = 0.01, rng: np.random.Generator | None = None) -> np.ndarray:
    """``image`` (C, H, W) float with the pixels outside ``keep`` (H, W) bool imputed.

    Each removed pixel i solves x_i = sum_j w_ij x_j / sum_j w_ij over its neighbours j inside
    the image (kept neighbours are known, removed ones are unknowns); the kept pixels are
    returned unchanged and the removed pixels' own values are never read. Gaussian noise of
    standard deviation ``noise`` is added to the imputed pixels, then they are clipped to the
    kept pixels' range per channel (the noise must not create values the image does not have).
    At least one pixel must be kept.
    """
    channels, height, width = image.shape
    removed = ~keep
    if not removed.any():
        return image.copy()
    if not keep.any():
        raise ValueError("impute needs at least one kept pixel")
    unknown = np.full((height, width), -1, dtype=np.int64)
    rows, cols = np.nonzero(removed)
    unknown[rows, cols] = np.arange(len(rows))
    n = len(rows)
    total = np.zeros(n)
    known = np.zeros((n, channels))
    a_rows, a_cols, a_vals = [np.arange(n)], [np.arange(n)], [np.ones(n)]
    for dy, dx, weight in NEIGHBOURS:
        r, c = rows + dy, cols + dx
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        i, r, c = np.nonzero(inside)[0], r[inside], c[inside]
        total[i] += weight
        j = unknown[r, c]
        is_unknown = j >= 0
        a_rows.append(i[is_unknown])
        a_cols.append(j[is_unknown])
        a_vals.append(np.full(is_unknown.sum(), -weight))
        np.add.at(known, i[~is_unknown], weight * image[:, r[~is_unknown], c[~is_unknown]].T)
    a_vals = [a_vals[0]] + [v / total[i] for v, i in zip(a_vals[1:], a_rows[1:])]
    matrix = scipy.sparse.csc_matrix((np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))), shape=(n, n))
    values = scipy.sparse.linalg.splu(matrix).solve(known / total[:, None])  # (n, C)
    if noise > 0:
        values = values + (rng or np.random.default_rng(0)).normal(0.0, noise, size=values.shape)
    kept = image[:, keep]
    values = np.clip(values, kept.min(1), kept.max(1))
    out = image.copy()
    out[:, rows, cols] = values.T
    return out
