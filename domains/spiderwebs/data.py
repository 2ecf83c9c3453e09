"""Building the dataset: generated webs → patches → paper-layout rows + design vectors + normalisation.

Processed tensors (what ``ingest`` stores): ``rows_train``/``rows_test`` ``[N, L, 16]`` (paper layout),
``y_train``/``y_test`` ``[N, 7]`` (raw design quantities), ``y_min``/``y_max`` (the normalisation, fitted
on the training split), ``scale`` (xyz divisor: twice the coordinate std of the training patches, so xyz / scale has the
std 0.5 the EDM preconditioning assumes), ``offset_scale`` (the same for neighbour offsets), and
``web_<i>_pos``/``web_<i>_edges`` for the first few whole webs (plots only).
"""

from __future__ import annotations

import numpy as np
import torch

from domains.spiderwebs.generator import WebKind, generate_web
from domains.spiderwebs.graph import WebGraph
from domains.spiderwebs.layout import graphs_to_layout
from domains.spiderwebs.patches import sample_patches
from domains.spiderwebs.properties import design_vector


def generated_patches(kinds: list[WebKind], n_webs: int, patches_per_web: int, min_nodes: int, max_nodes: int,
                      seed: int) -> tuple[list[WebGraph], list[WebGraph]]:
    """``(patches, webs)``: ``n_webs`` webs (kinds alternate) with ``patches_per_web`` patches each."""
    from tqdm.auto import tqdm

    patches, webs = [], []
    for w in tqdm(range(n_webs), desc="spiderwebs: generating webs", disable=n_webs < 20):
        rng = np.random.default_rng([seed, w])
        web = generate_web(kinds[w % len(kinds)], rng)
        webs.append(web)
        patches += sample_patches(web, patches_per_web, rng, min_nodes, max_nodes)
    return patches, webs


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The paper's 90/10 split (sklearn ``train_test_split``, ``random_state`` from the run seed)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed % (2**32))
    return np.sort(train), np.sort(test)


def build_tensors(patches: list[WebGraph], webs: list[WebGraph], max_length: int, max_neighbors: int,
                  test_fraction: float, seed: int, keep_webs: int = 2) -> dict[str, torch.Tensor]:
    if len(patches) < 10:
        raise ValueError(f"only {len(patches)} patches: raise data.n_webs or data.patches_per_web (need >= 10)")
    rows = graphs_to_layout(patches, max_length, max_neighbors)
    y = torch.tensor(np.stack([design_vector(g) for g in patches]), dtype=torch.float32)
    tr, te = split(len(patches), test_fraction, seed)
    tr_t, te_t = torch.from_numpy(tr), torch.from_numpy(te)
    present = rows[tr_t][..., 0] > 0
    scale = 2.0 * float(rows[tr_t][..., 1:4][present].std())  # xyz / scale has std 0.5 = sigma_data
    out = {"rows_train": rows[tr_t], "rows_test": rows[te_t], "y_train": y[tr_t], "y_test": y[te_t],
           "y_min": y[tr_t].min(0).values, "y_max": y[tr_t].max(0).values, "scale": torch.tensor(scale)}
    for i, w in enumerate(webs[:keep_webs]):
        out[f"web_{i}_pos"] = torch.from_numpy(w.pos).float()
        out[f"web_{i}_edges"] = torch.from_numpy(w.edges)
    return out
