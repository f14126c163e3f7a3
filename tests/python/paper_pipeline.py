#!/usr/bin/env python3
"""Independent implementation of the paper's pipeline with SciPy, for the
cross-check in tests/cross_check.rs.

usage: paper_pipeline.py CT.nii.gz OUT_MASK.nii.gz

Steps (Kurachka et al., Table 1): Gaussian sigma 0.6 mm (scipy.ndimage,
truncate 4, mode reflect) -> threshold 150..3000 HU -> closing with a ball of
1.2 mm (zero padding so the border is not eroded) -> 6-connected components,
drop those below 5000 mm^3, keep the largest. Writes the mask on the input grid.
"""
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi


def ball(radius_mm, spacing):
    ext = [int(np.floor(radius_mm / s + 1e-9)) for s in spacing]
    grids = np.meshgrid(*[np.arange(-e, e + 1) * s for e, s in zip(ext, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= radius_mm * radius_mm * (1 + 1e-12)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    img = nib.load(src)
    hu = np.asarray(img.dataobj, dtype=np.float64)
    if img.dataobj.slope is not None and not np.isnan(img.dataobj.slope):
        pass  # np.asarray(dataobj) already applies scl_slope / scl_inter
    spacing = np.linalg.norm(img.affine[:3, :3], axis=0)

    smoothed = ndi.gaussian_filter(hu, sigma=0.6 / spacing, mode="reflect", truncate=4.0)
    bone = (smoothed >= 150) & (smoothed <= 3000)

    se = ball(1.2, spacing)
    pad = [2 * (n // 2) for n in se.shape]
    padded = np.pad(bone, [(p, p) for p in pad])
    closed = ndi.binary_erosion(ndi.binary_dilation(padded, se), se, border_value=0)
    closed = closed[tuple(slice(p, p + n) for p, n in zip(pad, bone.shape))]

    labels, n = ndi.label(closed)  # 6-connectivity
    sizes = np.bincount(labels.ravel())[1:] * float(np.prod(spacing))
    keep = np.zeros(n + 1, dtype=bool)
    big = np.nonzero(sizes >= 5000.0)[0]
    if big.size:
        keep[1 + big[np.argmax(sizes[big])]] = True
    mask = keep[labels].astype(np.uint8)

    out = nib.Nifti1Image(mask, img.affine)
    nib.save(out, dst)
    print(f"voxels {int(mask.sum())} components {n} largest_mm3 {sizes.max() if n else 0:.1f}")


if __name__ == "__main__":
    main()
