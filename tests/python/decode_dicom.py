#!/usr/bin/env python3
"""Independent reference decoder for spinemesh's DICOM tests.

Usage: decode_dicom.py DICOM_FILE OUT_RAW

Decodes the (single-frame, grey-scale) image in DICOM_FILE with pydicom and
pylibjpeg (pylibjpeg-openjpeg for JPEG 2000), converts it to rescaled values
(stored value x RescaleSlope + RescaleIntercept, computed in float64), and
writes them to OUT_RAW as little-endian float32, row by row (columns fastest).
Prints one line of JSON with the image size, its Image Position (Patient) and
the transfer syntax. No patient data is printed.

Exit status 3 when pydicom, numpy or the JPEG plug-ins are missing (the Rust
test then skips, or fails under CI=true).
"""

import json
import sys

try:
    import numpy as np
    import pydicom
    import pylibjpeg  # noqa: F401  (registers the JPEG decoders with pydicom)
    import openjpeg  # noqa: F401
except ImportError as e:  # pragma: no cover
    print(f"missing Python module: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, out = sys.argv[1], sys.argv[2]
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    if pixels.ndim != 2:
        print(f"expected one grey-scale frame, got shape {pixels.shape}", file=sys.stderr)
        return 1
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    hu = (pixels.astype(np.float64) * slope + intercept).astype("<f4")
    hu.tofile(out)
    position = [float(v) for v in getattr(ds, "ImagePositionPatient", [])]
    print(
        json.dumps(
            {
                "rows": int(ds.Rows),
                "columns": int(ds.Columns),
                "position": position,
                "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
                "min": float(hu.min()),
                "max": float(hu.max()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
