//! JPEG 2000 decoding through the C OpenJPEG library (`openjpeg-sys`, which
//! builds OpenJPEG 2.5 from its vendored source; cargo feature `openjpeg-c`,
//! on by default), called directly: one single-threaded decoder per slice,
//! slices decoded in parallel by the caller. (Through dicom-rs the decoder
//! goes via the `jpeg2k` crate, which gives every slice's decoder a thread
//! pool of all the CPUs: measured 1.6× slower on 2 cores.)
//!
//! Why a C library here: the pure-Rust decoder (the `openjp2` crate, a
//! translation of OpenJPEG) measured about 2× slower per slice than OpenJPEG
//! itself, i.e. no faster on 2 cores than pydicom + pylibjpeg-openjpeg on one
//! (`cargo bench --bench compare`, case `j2k`). The codestream's SIZ is
//! checked against the DICOM header before this decoder sees it
//! ([`super::decode::check_j2k_header`]), which bounds what it allocates.

use openjpeg_sys as opj;
use std::ffi::c_void;

/// Reader state handed to OpenJPEG's stream callbacks.
struct Source<'a> {
    data: &'a [u8],
    pos: usize,
}

extern "C" fn read_fn(buf: *mut c_void, n: opj::OPJ_SIZE_T, user: *mut c_void) -> opj::OPJ_SIZE_T {
    // SAFETY: `user` is the `Source` registered below, alive for the decode;
    // `buf` has room for `n` bytes (OpenJPEG's contract).
    let src = unsafe { &mut *(user as *mut Source) };
    let left = src.data.len() - src.pos;
    if left == 0 {
        return usize::MAX; // (OPJ_SIZE_T)-1: end of stream
    }
    let k = left.min(n);
    // SAFETY: `k` bytes lie in both the source (from `pos`) and `buf`.
    unsafe { std::ptr::copy_nonoverlapping(src.data.as_ptr().add(src.pos), buf as *mut u8, k) };
    src.pos += k;
    k
}

extern "C" fn skip_fn(n: opj::OPJ_OFF_T, user: *mut c_void) -> opj::OPJ_OFF_T {
    // SAFETY: as in `read_fn`.
    let src = unsafe { &mut *(user as *mut Source) };
    let target = (src.pos as i64)
        .saturating_add(n)
        .clamp(0, src.data.len() as i64);
    let moved = target - src.pos as i64;
    src.pos = target as usize;
    moved
}

extern "C" fn seek_fn(n: opj::OPJ_OFF_T, user: *mut c_void) -> opj::OPJ_BOOL {
    // SAFETY: as in `read_fn`.
    let src = unsafe { &mut *(user as *mut Source) };
    if n < 0 || n as usize > src.data.len() {
        return 0;
    }
    src.pos = n as usize;
    1
}

extern "C" fn quiet(_msg: *const std::os::raw::c_char, _data: *mut c_void) {}

/// Decoded single-component image: samples, width, height, precision, signed.
pub(crate) struct Decoded {
    pub samples: Vec<i32>,
    pub width: u32,
    pub height: u32,
    pub precision: u32,
}

/// Decodes a JPEG 2000 codestream (J2K) or JP2 file held in memory.
pub(crate) fn decode(data: &[u8]) -> Result<Decoded, String> {
    let format = if data.starts_with(&[0xff, 0x4f, 0xff, 0x51]) {
        opj::CODEC_FORMAT::OPJ_CODEC_J2K
    } else {
        opj::CODEC_FORMAT::OPJ_CODEC_JP2
    };
    let mut src = Source { data, pos: 0 };
    // SAFETY: the OpenJPEG calls follow its documented life cycle (stream and
    // codec created, used, destroyed once each); `src` outlives the stream;
    // the image data is read within the component's `w × h` samples.
    unsafe {
        let stream = opj::opj_stream_create(1 << 16, 1);
        if stream.is_null() {
            return Err("OpenJPEG could not create a stream".into());
        }
        opj::opj_stream_set_read_function(stream, Some(read_fn));
        opj::opj_stream_set_skip_function(stream, Some(skip_fn));
        opj::opj_stream_set_seek_function(stream, Some(seek_fn));
        opj::opj_stream_set_user_data(stream, &mut src as *mut Source as *mut c_void, None);
        opj::opj_stream_set_user_data_length(stream, data.len() as u64);
        let codec = opj::opj_create_decompress(format);
        if codec.is_null() {
            opj::opj_stream_destroy(stream);
            return Err("OpenJPEG could not create a decoder".into());
        }
        opj::opj_set_error_handler(codec, Some(quiet), std::ptr::null_mut());
        opj::opj_set_warning_handler(codec, Some(quiet), std::ptr::null_mut());
        opj::opj_set_info_handler(codec, Some(quiet), std::ptr::null_mut());
        let mut params = std::mem::zeroed::<opj::opj_dparameters_t>();
        opj::opj_set_default_decoder_parameters(&mut params);
        let mut image: *mut opj::opj_image_t = std::ptr::null_mut();
        let result = (|| {
            if opj::opj_setup_decoder(codec, &mut params) == 0 {
                return Err("OpenJPEG rejected the decoder set-up".to_string());
            }
            if opj::opj_read_header(stream, codec, &mut image) == 0 || image.is_null() {
                return Err("the JPEG 2000 header could not be read".to_string());
            }
            if opj::opj_decode(codec, stream, image) == 0
                || opj::opj_end_decompress(codec, stream) == 0
            {
                return Err("the JPEG 2000 data could not be decoded".to_string());
            }
            let img = &*image;
            if img.numcomps != 1 || img.comps.is_null() {
                return Err(format!(
                    "the JPEG 2000 image has {} components, expected 1",
                    img.numcomps
                ));
            }
            let c = &*img.comps;
            let n = c.w as usize * c.h as usize;
            if c.data.is_null() || c.dx != 1 || c.dy != 1 {
                return Err("the JPEG 2000 component has no data or is subsampled".to_string());
            }
            let samples = std::slice::from_raw_parts(c.data, n).to_vec();
            Ok(Decoded {
                samples,
                width: c.w,
                height: c.h,
                precision: c.prec,
            })
        })();
        if !image.is_null() {
            opj::opj_image_destroy(image);
        }
        opj::opj_destroy_codec(codec);
        opj::opj_stream_destroy(stream);
        result
    }
}
