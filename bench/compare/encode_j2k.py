#!/usr/bin/env python3
"""Re-encodes a DICOM series as JPEG 2000 lossless (1.2.840.10008.1.2.4.90)
with pydicom and pylibjpeg-openjpeg, for the side-by-side benchmark.

usage: encode_j2k.py SRC_DIR DST_DIR
"""
import os
import sys

import pydicom
from pydicom.uid import JPEG2000Lossless


def main():
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    n = 0
    for name in sorted(os.listdir(src)):
        ds = pydicom.dcmread(os.path.join(src, name))
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        ds.save_as(os.path.join(dst, name), enforce_file_format=True)
        n += 1
    print(f"{n} slices encoded as JPEG 2000 lossless into {dst}")


if __name__ == "__main__":
    main()
