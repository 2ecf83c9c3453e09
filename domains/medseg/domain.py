"""``medseg``: 3-D diffusion segmentation with ensemble uncertainty, against a MONAI U-Net baseline.

After "Head and Neck Tumor Segmentation from [18F]F-FDG PET/CT Images Based on 3D Diffusion Model":
the state is the mask (``2 m - 1`` per region: whole tumour, or WT/TC/ET), the image channels enter
the 3-D U-Net as conditioning channels, training uses the domain mask loss on MONAI-sampled
patches, and sampling is a few-step core sampler per sliding window. Overridden stages, and why:

* ``training_loss`` is the mask loss (``losses.py``: x0-space MSE plus BCE / soft Dice on the predicted
  mask), used by the shared training loop; ``train`` also fits the deterministic baseline (MONAI U-Net, Dice + CE) on the same patches with the
  same step budget, saved beside the diffusion checkpoint;
* ``sample`` segments whole test volumes (sliding windows, an ensemble of seeded members per case)
  instead of drawing ``sample.n`` unconditional states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from core.catalog import CatalogEntry, data_root, sha256_file
from core.config import config_hash
from core.networks import UNet
from core.provenance import RunDir, runs_root
from core.seeding import derive_seed
from core.types import State
from domains.base import DiffusionDomain
from domains.medseg import inference, report
from domains.medseg.baseline import baseline_train_config, load_baseline, save_baseline, train_baseline
from domains.medseg.config import MedsegConfig
from domains.medseg.data import encode_id, eval_cases, eval_splits, load_case, split_cases
from domains.medseg.hecktor import check_listed
from domains.medseg.layouts import (
    LAYOUTS,
    Case,
    LayoutSpec,
    brats_cases,
    hecktor_cases,
    task_regions,
    totalseg_cases,
)
from domains.medseg.losses import MaskDenoisingLoss
from domains.medseg.networks import MonaiDenoiserNet
from domains.medseg.patches import training_patches
from domains.refs import CheckpointRef, DatasetRef, SamplesRef


class MedsegDomain(DiffusionDomain):
    name = "medseg"
    config_cls = MedsegConfig

    # ---- configuration ------------------------------------------------------------------------
    def stage_hash(self, cfg: MedsegConfig, stage: str) -> str:  # type: ignore[override]
        extra = {"train": ("baseline", "mask_loss"),
                 "sample": ("inference", "baseline", "data", "mask_loss")}.get(stage, ())
        base = super().stage_hash(cfg, stage)
        return base if not extra else config_hash({"base": base, **cfg.section(*extra)})

    def spec(self, cfg: MedsegConfig) -> LayoutSpec:
        return LAYOUTS[cfg.data.layout]

    def regions(self, cfg: MedsegConfig) -> dict[str, tuple[int, ...]]:
        return task_regions(self.spec(cfg), cfg.data.task)

    def cases(self, cfg: MedsegConfig, entry: CatalogEntry, split: str) -> list[Case]:
        if cfg.data.layout == "brats2013":
            if split not in entry.splits:
                raise KeyError(f"catalog entry {entry.name!r} has no split {split!r}; it has {sorted(entry.splits)}")
            dirs = entry.splits[split]
            found = brats_cases(data_root(), [dirs] if isinstance(dirs, str) else list(dirs))
        elif cfg.data.layout == "totalseg_example":
            found = totalseg_cases(data_root() / (entry.path or ""))
        else:
            folder = data_root() / (entry.path or "")
            found = hecktor_cases(folder, split)
            check_listed(folder, [p for c in found for p in (*c.images, c.label)])
        return found[: cfg.data.max_cases] if cfg.data.max_cases else found

    # ---- ingest -------------------------------------------------------------------------------
    def prepare(self, cfg: MedsegConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:
        cache = runs_root() / self.name / "_cache" if cfg.data.cache else None
        out: dict[str, torch.Tensor] = {}
        for split in dict.fromkeys(("train", *eval_splits(cfg.inference.split))):
            cases = self.cases(cfg, entry, split)
            if not cases:
                raise ValueError(f"split {split!r} of {entry.name!r} has no cases")
            for i, case in enumerate(tqdm(cases, desc=f"medseg: reading {split}", disable=len(cases) < 2)):
                for k, v in load_case(case, cfg.data, cache).items():
                    out[f"{split}/{i}/{k}"] = v
                out[f"{split}/{i}/id"] = encode_id(case.case_id)
        return out

    # ---- training -----------------------------------------------------------------------------
    def training_data(self, cfg: MedsegConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:
        images, masks = training_patches(split_cases(data, "train"), self.regions(cfg), cfg.data,
                                         derive_seed(cfg.seed, "data"))
        return masks.float() * 2.0 - 1.0, {"channels": images}

    def build_network(self, cfg: MedsegConfig) -> nn.Module:
        n, r = cfg.network, len(self.regions(cfg))
        if n.arch == "monai_unet":
            return MonaiDenoiserNet(r, len(self.spec(cfg).modalities), n.monai_channels, head_channels=n.monai_head)
        return UNet(3, r, r, base_channels=n.base_channels, channel_mults=n.channel_mults,
                    num_res_blocks=n.num_res_blocks, cond_channels=len(self.spec(cfg).modalities),
                    norm_groups=n.norm_groups)

    def sample_shape(self, cfg: MedsegConfig) -> tuple[int, ...]:
        return (len(self.regions(cfg)), *cfg.data.patch)

    def training_loss(self, cfg: MedsegConfig, model: Any) -> MaskDenoisingLoss:  # type: ignore[override]
        """The core denoising loss in x0 space plus the mask terms of ``mask_loss`` (``losses.py``)."""
        return MaskDenoisingLoss(cfg.loss.time_sampler, cfg.mask_loss)

    def train(self, cfg: MedsegConfig, data: DatasetRef, run: RunDir) -> CheckpointRef:  # type: ignore[override]
        ref = super().train(cfg, data, run)
        if cfg.baseline.enabled and ref.path:
            x0, cond = self.training_data(cfg, self.load_data(data))
            b = cfg.baseline
            tc = baseline_train_config(b, b.steps or cfg.train.steps, b.batch_size or cfg.train.batch_size, cfg.seed,
                                       cfg.train.checkpoint_every, cfg.train.device)
            net, result = train_baseline(cond["channels"], (x0 > 0).float(), b, tc,
                                         self.train_workdir(cfg, data, run) / "baseline")
            save_baseline(net, Path(ref.path), {"in_channels": int(cond["channels"].shape[1]),
                                                "out_channels": int(x0.shape[1]), "channels": list(b.channels),
                                                "steps": result.step, "final_loss": result.loss,
                                                "checkpoint": str(result.checkpoint)})
        return ref

    # ---- sampling -----------------------------------------------------------------------------
    def run_data_or_prepare(self, cfg: MedsegConfig, run: RunDir) -> dict[str, torch.Tensor]:
        """The run's ingested dataset, or a fresh (cached) preparation when the run has none."""
        try:
            return self.run_data(run)
        except FileNotFoundError:
            return self.prepare(cfg, self.entry(cfg))

    def sample(self, cfg: MedsegConfig, ckpt: CheckpointRef, run: RunDir) -> SamplesRef:  # type: ignore[override]
        model = self.load_model(cfg, ckpt)
        cases = eval_cases(self.run_data_or_prepare(cfg, run), cfg.inference.split)
        base = load_baseline(Path(ckpt.path)) if cfg.baseline.enabled else None
        n_out, out, nfe = len(self.regions(cfg)), {}, 0
        for c, case in enumerate(tqdm(cases, desc="medseg: segmenting")):
            members, nfe = inference.diffusion_ensemble(model, cfg, case["image"], n_out, c)
            out[f"{c}/members"] = members
            if base is not None:
                out[f"{c}/baseline"] = inference.baseline_predict(base, cfg, case["image"])
            out[f"{c}/affine"], out[f"{c}/id"] = case["affine"], encode_id(case["id"])
            out[f"{c}/orig_affine"] = case["orig_affine"]
            out[f"{c}/orig_shape"] = torch.tensor(case["orig_label"].shape, dtype=torch.int64)
        raw = run.samples / "samples.safetensors"
        tmp = raw.with_name(".samples.safetensors.tmp")
        save_file({k: v.contiguous() for k, v in out.items()}, str(tmp))
        tmp.replace(raw)
        files = [str(p) for p in self.write_samples(cfg, out, run)]
        return SamplesRef(self.name, str(raw), sha256_file(raw), len(cases), tuple(files),
                          {"nfe": nfe, "sampler": cfg.sample.sampler, "steps": cfg.sample.steps,
                           "ensemble": cfg.inference.ensemble, "split": cfg.inference.split,
                           "checkpoint": ckpt.path, "checkpoint_sha256": ckpt.sha256})

    def write_samples(self, cfg: MedsegConfig, x: State, run: RunDir) -> list[Path]:
        return report.write_case_niftis(x, list(self.regions(cfg)), run.samples / "nifti")

    # ---- validation ---------------------------------------------------------------------------
    def evaluate(self, cfg: MedsegConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,  # type: ignore[override]
                 info: dict[str, Any]) -> dict[str, Any]:
        cases = eval_cases(data, cfg.inference.split)
        return report.evaluate(cfg, x, cases, self.regions(cfg), run, info)

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        keys = [k for k in metrics if k.startswith(("dice_", "hd95_")) and "_ens" not in k][:4]
        return {k: metrics[k] for k in [*keys, "unc_err_corr", "nfe"] if k in metrics}
