//! Mesh files. Binary STL with an 80-byte header that states the coordinate
//! frame (`SPACE=LPS`, the way 3D Slicer marks it) and units, and nothing else:
//! no patient data ever goes into a mesh file.

use crate::surface::Mesh;
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The 80-byte STL header for a mesh in LPS millimetres.
pub fn stl_header() -> [u8; 80] {
    let text = b"spinemesh SPACE=LPS UNITS=mm";
    let mut h = [b' '; 80];
    h[..text.len()].copy_from_slice(text);
    h
}

/// Streams a binary STL (facet normals computed from the winding).
pub fn write_stl_binary(mesh: &Mesh, w: &mut dyn Write) -> std::io::Result<()> {
    let n: u32 = mesh
        .triangles
        .len()
        .try_into()
        .map_err(|_| std::io::Error::other("too many triangles for STL (more than 2³² − 1)"))?;
    w.write_all(&stl_header())?;
    w.write_all(&n.to_le_bytes())?;
    let mut rec = [0u8; 50];
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|i| mesh.vertices[i as usize]);
        let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let mut nrm = [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ];
        let len = (nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]).sqrt();
        if len > 0.0 {
            nrm = nrm.map(|x| x / len);
        }
        for (k, val) in nrm.iter().chain(&a).chain(&b).chain(&c).enumerate() {
            rec[4 * k..4 * k + 4].copy_from_slice(&val.to_le_bytes());
        }
        w.write_all(&rec)?;
    }
    Ok(())
}

/// Writes a binary STL atomically; returns its size in bytes.
pub fn save_stl(mesh: &Mesh, path: &Path) -> Result<u64> {
    crate::io::atomic::write_with(path, |w| write_stl_binary(mesh, w))
}

/// Reads a binary STL into a mesh, merging identical vertex positions.
pub fn read_stl_binary(path: &Path) -> Result<Mesh> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    if bytes.len() < 84 {
        return Err(Error::format(path, "too short for a binary STL"));
    }
    let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as usize;
    if bytes.len() != 84 + 50 * n {
        return Err(Error::format(
            path,
            format!(
                "binary STL says {n} triangles but holds {} bytes",
                bytes.len()
            ),
        ));
    }
    let mut mesh = Mesh::default();
    let mut index: std::collections::HashMap<[u32; 3], u32> = Default::default();
    for t in 0..n {
        let rec = &bytes[84 + 50 * t..][..50];
        let mut tri = [0u32; 3];
        for (k, slot) in tri.iter_mut().enumerate() {
            let p: [f32; 3] = std::array::from_fn(|a| {
                let o = 12 + 12 * k + 4 * a;
                f32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]])
            });
            let key = p.map(f32::to_bits);
            *slot = *index.entry(key).or_insert_with(|| {
                mesh.vertices.push(p);
                (mesh.vertices.len() - 1) as u32
            });
        }
        mesh.triangles.push(tri);
    }
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{surface::mask_surface, Grid, Mask};

    #[test]
    fn stl_round_trip_keeps_the_closed_surface() {
        let mut m = Mask::filled(Grid::new([6, 6, 6], [0.5, 0.6, 1.2], [10.0, 20.0, 30.0]), 0);
        for (x, y, z) in [(2, 2, 2), (3, 2, 2), (3, 3, 2), (3, 3, 3)] {
            m.set(x, y, z, 1);
        }
        let mesh = mask_surface(&m);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.stl");
        let bytes = save_stl(&mesh, &p).unwrap();
        assert_eq!(bytes as usize, 84 + 50 * mesh.triangles.len());
        let raw = std::fs::read(&p).unwrap();
        assert!(raw[..80].windows(9).any(|w| w == b"SPACE=LPS"));
        let back = read_stl_binary(&p).unwrap();
        assert_eq!(back.triangles.len(), mesh.triangles.len());
        assert_eq!(back.vertices.len(), mesh.vertices.len());
        assert!(back.is_watertight());
        assert!((back.volume_mm3() - mesh.volume_mm3()).abs() < 1e-6);
    }
}
