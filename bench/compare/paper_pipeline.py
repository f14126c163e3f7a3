#!/usr/bin/env python3
"""The paper's pipeline in the paper's Python stack: the reference baseline of
the side-by-side benchmark (bench/compare/compare.py).

usage: paper_pipeline.py DICOM_DIR OUT_DIR [--closing opencv|scipy3d]

Kurachka, Wang & Ren, Table 1, with the libraries the paper names:

  pydicom (+ pylibjpeg-openjpeg for JPEG 2000)  read, HU = raw * slope + intercept
  scipy.ndimage.gaussian_filter                  sigma 0.6 mm (per axis in voxels)
  NumPy                                          threshold 150..3000 HU
  OpenCV morphologyEx(MORPH_CLOSE) per slice     elliptical kernel of radius 1.2 mm
                                                 (in pixels along x and y)
  scipy.ndimage.label + np.bincount              drop components < 5000 mm^3,
                                                 keep the largest (6-connected)
  crop to the bounding box + 2 mm
  skimage.measure.marching_cubes(spacing=...)    level 0.5
  numpy-stl                                      binary STL

Written to be a fair, reasonable implementation: vectorised NumPy, float32
where the paper's stack allows it, no Python loops over voxels (only over
slices for OpenCV, as the paper does). `--closing scipy3d` replaces the
slice-wise closing with the 3D ball closing spinemesh uses
(scipy.ndimage.binary_closing on a zero-padded volume), for comparing masks.

Prints one JSON line: each stage's seconds, the total, voxel and triangle counts.
"""
import json
import os
import sys
import time

import numpy as np


def read_series(folder):
    import pydicom

    files = []
    for root, _, names in os.walk(folder):
        for n in names:
            files.append(os.path.join(root, n))
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except Exception:
            continue
        if "PixelData" not in ds:
            continue
        slices.append(ds)
    normal = np.cross(
        np.array(slices[0].ImageOrientationPatient[:3], float),
        np.array(slices[0].ImageOrientationPatient[3:], float),
    )
    slices.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    rows, cols = int(slices[0].Rows), int(slices[0].Columns)
    hu = np.empty((len(slices), rows, cols), dtype=np.float32)
    for k, ds in enumerate(slices):
        slope = float(getattr(ds, "RescaleSlope", 1.0))
        inter = float(getattr(ds, "RescaleIntercept", 0.0))
        np.multiply(ds.pixel_array, np.float32(slope), out=hu[k], casting="unsafe")
        hu[k] += np.float32(inter)
    dy, dx = (float(v) for v in slices[0].PixelSpacing)
    if len(slices) > 1:
        p0 = np.array(slices[0].ImagePositionPatient, float)
        p1 = np.array(slices[-1].ImagePositionPatient, float)
        dz = float(np.dot(normal, p1 - p0)) / (len(slices) - 1)
    else:
        dz = float(getattr(slices[0], "SliceThickness", 1.0))
    return hu, (dz, dy, dx)


def ball(radius_mm, spacing):
    ext = [int(np.floor(radius_mm / s + 1e-9)) for s in spacing]
    grids = np.meshgrid(*[np.arange(-e, e + 1) * s for e, s in zip(ext, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= radius_mm * radius_mm * (1 + 1e-12)


def closing_opencv(bone, radius_mm, spacing):
    import cv2

    _, dy, dx = spacing
    ry, rx = int(round(radius_mm / dy)), int(round(radius_mm / dx))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rx + 1, 2 * ry + 1))
    # Zero border so objects touching the image edge are not eroded there.
    out = np.empty(bone.shape, dtype=np.uint8)
    src = bone.view(np.uint8)
    for k in range(bone.shape[0]):
        cv2.morphologyEx(
            src[k], cv2.MORPH_CLOSE, kernel, dst=out[k],
            borderType=cv2.BORDER_CONSTANT, borderValue=0,
        )
    return out.view(bool)


def closing_scipy3d(bone, radius_mm, spacing):
    from scipy import ndimage as ndi

    se = ball(radius_mm, spacing)
    pad = [2 * (n // 2) for n in se.shape]
    padded = np.pad(bone, [(p, p) for p in pad])
    closed = ndi.binary_closing(padded, se)
    return closed[tuple(slice(p, p + n) for p, n in zip(pad, bone.shape))]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    closing = "opencv"
    if "--closing" in sys.argv:
        closing = sys.argv[sys.argv.index("--closing") + 1]
        args.remove(closing)
    src, out_dir = args[0], args[1]
    os.makedirs(out_dir, exist_ok=True)
    from scipy import ndimage as ndi
    from skimage import measure
    from stl import mesh as stl_mesh

    stages = {}
    t0 = t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        stages[name] = now - t
        t = now

    hu, spacing = read_series(src)  # (z, y, x), spacing (dz, dy, dx) mm
    lap("read")
    sigma = [0.6 / s for s in spacing]
    smoothed = ndi.gaussian_filter(hu, sigma=sigma, mode="reflect", truncate=4.0)
    del hu
    bone = (smoothed >= 150) & (smoothed <= 3000)
    del smoothed
    lap("smooth+threshold")
    if closing == "opencv":
        closed = closing_opencv(bone, 1.2, spacing)
    else:
        closed = closing_scipy3d(bone, 1.2, spacing)
    del bone
    lap("closing")
    labels, n = ndi.label(closed)  # 6-connectivity
    voxel_mm3 = float(np.prod(spacing))
    sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
    big = np.nonzero(sizes >= 5000.0)[0]
    if big.size == 0:
        print("no component of 5000 mm^3", file=sys.stderr)
        sys.exit(1)
    mask = labels == 1 + big[np.argmax(sizes[big])]
    del labels, closed
    lap("components")
    zs, ys, xs = (np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
    m = [int(np.ceil(2.0 / s)) for s in spacing]
    lo = [max(0, v[0] - mm) for v, mm in zip((zs, ys, xs), m)]
    hi = [min(n_ - 1, v[-1] + mm) + 1 for v, mm, n_ in zip((zs, ys, xs), m, mask.shape)]
    crop = np.pad(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], 1).astype(np.float32)
    lap("crop")
    verts, faces, _, _ = measure.marching_cubes(crop, level=0.5, spacing=spacing)
    lap("surface")
    # Back to x, y, z in mm (patient axes of an axial series).
    verts = verts[:, ::-1] + (np.array(lo[::-1], float) - 1.0) * np.array(spacing[::-1])
    tri = verts[faces[:, ::-1]]
    out = stl_mesh.Mesh(np.zeros(len(faces), dtype=stl_mesh.Mesh.dtype))
    out.vectors[:] = tri
    out.save(os.path.join(out_dir, "spine.stl"))
    np.save(os.path.join(out_dir, "mask.npy"), np.packbits(mask))
    lap("write")
    print(json.dumps({
        "stages": stages,
        "seconds_total": time.perf_counter() - t0,
        "mask_voxels": int(mask.sum()),
        "triangles": int(len(faces)),
        "closing": closing,
    }))


if __name__ == "__main__":
    main()
