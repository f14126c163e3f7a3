"""Independent check of spinemesh's mesh files with trimesh.

Usage: python3 check_mesh.py FILE [FILE ...]

Prints one JSON object per file (a JSON list): what trimesh says about
watertightness, winding, volume and the frame stated in the file's header.
trimesh reads STL (binary and ASCII), PLY and OBJ itself; vertices that
coincide are merged (STL stores three per triangle).
"""

import json
import sys

import trimesh


def header_frame(path):
    with open(path, "rb") as f:
        head = f.read(512).upper()
    for frame in (b"SPACE=LPS", b"SPACE=RAS"):
        if frame in head:
            return frame.decode().split("=")[1]
    return None


def check(path):
    mesh = trimesh.load(path, force="mesh", process=True)
    # Merge coincident vertices exactly (STL has none shared).
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    return {
        "file": path,
        "triangles": int(len(mesh.faces)),
        "vertices": int(len(mesh.vertices)),
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "is_volume": bool(mesh.is_volume),
        "volume": float(mesh.volume),
        "area": float(mesh.area),
        "euler_number": int(mesh.euler_number),
        "bounds": [[float(x) for x in b] for b in mesh.bounds],
        "frame": header_frame(path),
    }


if __name__ == "__main__":
    print(json.dumps([check(p) for p in sys.argv[1:]]))
