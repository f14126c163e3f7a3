//! spinemesh: CT (DICOM series or NIfTI) to a 3D mesh of the lumbar spine.
//!
//! The pipeline of Kurachka et al. ("A Python-implemented algorithm for
//! three-dimensional reconstruction of the human lumbar spine from DICOM CT
//! data") is available step by step, each step a pure function with
//! parameters in physical units (mm, mm³, HU):
//!
//! 1. [`io::dicom`] / [`io::nifti`]: read the CT into a [`Volume`] of HU
//! 2. [`smooth::gaussian`]: 3D Gaussian, σ in mm
//! 3. [`threshold::threshold`]: keep voxels in [low, high] HU
//! 4. [`morphology::closing`]: closing with an ellipsoid of radius r mm
//! 5. [`components`]: drop components below V mm³, keep the largest
//! 6. [`crop`]: bounding box + margin mm
//! 7. [`surface::marching_cubes`]: surface in patient (LPS) coordinates
//! 8. write the STL with [`io::mesh`]
//!
//! [`pipeline`] chains them; [`evaluate`] scores a mask against a reference;
//! [`overview`] draws `overview.png` (CT slices with the mask outlined, and
//! the mask's projection) to check a result at a glance.
//!
//! Coordinates: a [`Grid`] maps voxel indices to DICOM patient space (LPS, mm).
//! NIfTI files are RAS; the conversion happens in [`io::nifti`].

// Index loops over the three axes read better than iterator chains here.
#![allow(clippy::needless_range_loop)]

pub mod alloc;
pub mod components;
pub mod crop;
pub mod edt;
pub mod error;
pub mod evaluate;
pub mod io;
pub mod mar;
pub mod mesh;
pub mod morphology;
pub mod overview;
pub mod phantom;
pub mod pipeline;
pub mod report;
pub mod run;
pub mod segment;
pub mod smooth;
pub mod surface;
pub mod threshold;
pub(crate) mod vec3;
pub mod vertebra_mesh;
pub mod volume;

pub use error::{Error, Result};
pub use volume::{Grid, Mask, Volume};
