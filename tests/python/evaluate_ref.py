#!/usr/bin/env python3
"""Independent reference for spinemesh's `evaluate`: Dice, IoU, HD95 and ASSD
of two masks with NumPy/SciPy/nibabel, the medpy way.

usage: evaluate_ref.py PRED REF [--pred-labels 1] [--ref-labels 26-31]

Labels: "26-31", "1", "20,21,22"; default: any non-zero value. Both images
must be on the same grid (same shape and affine). Prints one JSON object:
dice, iou, hd95, hd, assd (mean of both directed distance sets together),
asd_pred_to_ref, asd_ref_to_pred, voxel counts, spacing, and each image's
affine / sform / qform as nibabel reads them.
"""
import argparse
import json
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def parse_labels(s):
    if s is None or s.strip() == "":
        return None
    out = []
    for part in s.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def load_mask(path, labels):
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if labels is None:
        mask = (data != 0) & ~np.isnan(data)
    else:
        mask = np.isin(np.rint(data).astype(np.int64), labels)
    return img, mask


def border(mask):
    struct = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=struct, iterations=1, border_value=0)


def directed(a_border, b_border, spacing):
    dt = ndimage.distance_transform_edt(~b_border, sampling=spacing)
    return dt[a_border]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pred")
    ap.add_argument("ref")
    ap.add_argument("--pred-labels")
    ap.add_argument("--ref-labels")
    args = ap.parse_args()

    pimg, p = load_mask(args.pred, parse_labels(args.pred_labels))
    rimg, r = load_mask(args.ref, parse_labels(args.ref_labels))
    if p.shape != r.shape or not np.allclose(pimg.affine, rimg.affine, atol=1e-3):
        sys.exit("the two images are not on the same grid")
    spacing = [float(v) for v in rimg.header.get_zooms()[:3]]

    inter = int(np.count_nonzero(p & r))
    npred, nref = int(np.count_nonzero(p)), int(np.count_nonzero(r))
    union = npred + nref - inter
    out = {
        "dice": 2.0 * inter / (npred + nref) if npred + nref else 1.0,
        "iou": inter / union if union else 1.0,
        "pred_voxels": npred,
        "ref_voxels": nref,
        "intersection_voxels": inter,
        "spacing": spacing,
        "hd95": None,
        "hd": None,
        "assd": None,
        "asd_pred_to_ref": None,
        "asd_ref_to_pred": None,
    }
    if npred and nref:
        pb, rb = border(p), border(r)
        d_pr = directed(pb, rb, spacing)
        d_rp = directed(rb, pb, spacing)
        out["hd95"] = float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))
        out["hd"] = float(max(d_pr.max(), d_rp.max()))
        out["assd"] = float(np.mean(np.concatenate([d_pr, d_rp])))
        out["asd_pred_to_ref"] = float(d_pr.mean())
        out["asd_ref_to_pred"] = float(d_rp.mean())
        out["pred_surface_voxels"] = int(np.count_nonzero(pb))
        out["ref_surface_voxels"] = int(np.count_nonzero(rb))
    for name, img in (("pred", pimg), ("ref", rimg)):
        out[name + "_affine"] = img.affine.tolist()
        out[name + "_sform"] = img.get_sform().tolist()
        out[name + "_sform_code"] = int(img.header["sform_code"])
        out[name + "_qform"] = img.get_qform().tolist()
        out[name + "_qform_code"] = int(img.header["qform_code"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
