//! A decoder for sequential-DCT, Huffman-coded, single-component JPEG with 8-
//! or 12-bit samples (JPEG Baseline and Extended, processes 1, 2 and 4). It
//! backs up `jpeg-decoder`, which lacks 12-bit precision. Its inverse DCT is
//! libjpeg's integer one, so it decodes as DCMTK and GDCM do.

/// Zig-zag position → natural (row-major) position in an 8×8 block.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A canonical Huffman table.
#[derive(Clone, Default)]
struct Huffman {
    /// Largest code of each length 1..=16 (-1: none).
    max_code: [i32; 17],
    /// Index into `values` of the first code of each length, minus that code.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, String> {
        let mut h = Huffman {
            max_code: [-1; 17],
            offset: [0; 17],
            values,
        };
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16 {
            let n = i32::from(counts[len - 1]);
            h.offset[len] = k - code;
            if n > 0 {
                code += n;
                k += n;
                h.max_code[len] = code - 1;
            }
            code <<= 1;
        }
        if k as usize > h.values.len() || code > (1 << 17) {
            return Err("bad Huffman table".into());
        }
        Ok(h)
    }
}

/// Reads entropy-coded bits, removing stuffed zero bytes; at a marker it feeds zeros.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u32,
    n: u32,
    marker: bool,
}

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        if self.n == 0 {
            let mut byte = 0;
            if !self.marker && self.pos < self.data.len() {
                byte = self.data[self.pos];
                if byte == 0xFF {
                    if self.data.get(self.pos + 1) == Some(&0) {
                        self.pos += 2;
                    } else {
                        self.marker = true;
                        byte = 0;
                    }
                } else {
                    self.pos += 1;
                }
            }
            self.acc = u32::from(byte);
            self.n = 8;
        }
        self.n -= 1;
        (self.acc >> self.n) & 1
    }

    fn bits(&mut self, count: u32) -> u32 {
        (0..count).fold(0, |v, _| (v << 1) | self.bit())
    }

    fn decode(&mut self, h: &Huffman) -> Result<u8, String> {
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | self.bit() as i32;
            if code <= h.max_code[len] {
                return h
                    .values
                    .get((code + h.offset[len]) as usize)
                    .copied()
                    .ok_or_else(|| "bad Huffman code".to_string());
            }
        }
        Err("bad Huffman code in the JPEG data".into())
    }

    /// A `size`-bit difference, sign-extended (JPEG's RECEIVE and EXTEND).
    fn receive(&mut self, size: u8) -> i32 {
        if size == 0 {
            return 0;
        }
        let size = u32::from(size.min(16));
        let v = self.bits(size) as i32;
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
    }

    /// Moves past the next RSTn marker (a restart: byte-aligned, fresh state).
    fn restart(&mut self) {
        self.n = 0;
        self.marker = false;
        while self.pos + 1 < self.data.len()
            && !(self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]))
        {
            self.pos += 1;
        }
        self.pos = (self.pos + 2).min(self.data.len());
    }
}

fn u16_at(d: &[u8], at: usize) -> Result<usize, String> {
    d.get(at..at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| "the JPEG stream ends early".to_string())
}

/// What the frame and scan headers say.
struct Frame {
    precision: u32,
    width: usize,
    height: usize,
    quant: [u16; 64],
    restart_interval: usize,
}

/// Decodes a single-component sequential DCT JPEG: (width, height, samples).
/// `max_pixels`: the most pixels the caller accepts (the image's size is
/// checked before anything is allocated).
pub(super) fn decode(d: &[u8], max_pixels: usize) -> Result<(u32, u32, Vec<u16>), String> {
    if d.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err("no JPEG start-of-image marker".into());
    }
    let mut quant = [[0u16; 64]; 4];
    let mut dc: [Huffman; 4] = Default::default();
    let mut ac: [Huffman; 4] = Default::default();
    // precision, width, height, quantisation table
    let mut frame: Option<(u32, usize, usize, usize)> = None;
    let mut restart_interval = 0usize;
    let mut pos = 2;
    loop {
        while d.get(pos) == Some(&0xFF) && d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if d.get(pos) != Some(&0xFF) {
            return Err("a JPEG marker was expected".into());
        }
        let marker = *d.get(pos + 1).ok_or("the JPEG stream ends early")?;
        pos += 2;
        if marker == 0xD9 {
            return Err("the JPEG stream has no scan".into());
        }
        if (0xD0..=0xD8).contains(&marker) || marker == 0x01 {
            continue; // markers without a length
        }
        let len = u16_at(d, pos)?;
        if len < 2 {
            return Err("a JPEG segment has an invalid length".into());
        }
        let seg = d
            .get(pos + 2..pos + len)
            .ok_or("a JPEG segment runs past the end")?;
        match marker {
            0xDB => {
                let mut i = 0;
                while i < seg.len() {
                    let (wide, t) = (seg[i] >> 4 != 0, usize::from(seg[i] & 3));
                    i += 1;
                    for (k, q) in quant[t].iter_mut().enumerate() {
                        *q = if wide {
                            u16_at(seg, i + 2 * k)? as u16
                        } else {
                            u16::from(*seg.get(i + k).ok_or("short JPEG DQT segment")?)
                        };
                    }
                    i += if wide { 128 } else { 64 };
                }
            }
            0xC4 => {
                let mut i = 0;
                while i + 17 <= seg.len() {
                    let (class, t) = (seg[i] >> 4, usize::from(seg[i] & 3));
                    let mut counts = [0u8; 16];
                    counts.copy_from_slice(&seg[i + 1..i + 17]);
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = seg
                        .get(i + 17..i + 17 + n)
                        .ok_or("short JPEG DHT segment")?
                        .to_vec();
                    let table = Huffman::new(&counts, values)?;
                    if class == 0 {
                        dc[t] = table;
                    } else {
                        ac[t] = table;
                    }
                    i += 17 + n;
                }
            }
            0xC0 | 0xC1 => {
                if seg.len() < 9 || seg[5] != 1 {
                    return Err("only single-component (grey-scale) JPEG is supported".into());
                }
                let precision = u32::from(seg[0]);
                if precision != 8 && precision != 12 {
                    return Err(format!(
                        "JPEG sample precision {precision} is not supported"
                    ));
                }
                let (h, w) = (u16_at(seg, 1)?, u16_at(seg, 3)?);
                if w == 0 || h == 0 {
                    return Err("the JPEG image has no size".into());
                }
                if w * h > max_pixels {
                    return Err(format!(
                        "the JPEG image claims {w}×{h} pixels, more than the {max_pixels} expected"
                    ));
                }
                frame = Some((precision, w, h, usize::from(seg[8] & 3)));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err("only sequential Huffman-coded DCT JPEG is supported here".into());
            }
            0xDD => restart_interval = u16_at(seg, 0)?,
            0xDA => {
                let (precision, width, height, qt) =
                    frame.ok_or("JPEG scan before the frame header")?;
                let tables = *seg.get(2).ok_or("short JPEG SOS segment")?;
                let (dct, act) = (usize::from(tables >> 4) & 3, usize::from(tables & 3));
                let f = Frame {
                    precision,
                    width,
                    height,
                    quant: quant[qt],
                    restart_interval,
                };
                return decode_scan(&d[pos + len..], &f, &dc[dct], &ac[act]);
            }
            _ => {}
        }
        pos += len;
    }
}

/// The inverse DCT of one dequantised block (natural order), exactly as
/// libjpeg's `jpeg_idct_islow` (IJG 6b, `jidctint.c`) computes it, so
/// decoded samples match libjpeg-based decoders (DCMTK, GDCM). Returns
/// samples before the level shift, rounded.
fn idct_islow(coef: &[i64; 64], precision: u32) -> [i64; 64] {
    const CONST_BITS: u32 = 13;
    let pass1: u32 = if precision == 8 { 2 } else { 1 };
    let descale = |x: i64, n: u32| (x + (1 << (n - 1))) >> n;
    // One 8-point pass over `v[0..8]` (stride already applied); returns the
    // 8 outputs before descaling.
    let pass = |v: [i64; 8]| -> [i64; 8] {
        let (z2, z3) = (v[2], v[6]);
        let z1 = (z2 + z3) * 4433;
        let tmp2 = z1 - z3 * 15137;
        let tmp3 = z1 + z2 * 6270;
        let tmp0 = (v[0] + v[4]) << CONST_BITS;
        let tmp1 = (v[0] - v[4]) << CONST_BITS;
        let (t10, t13, t11, t12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
        let (o0, o1, o2, o3) = (v[7], v[5], v[3], v[1]);
        let (z1, z2, z3, z4) = (o0 + o3, o1 + o2, o0 + o2, o1 + o3);
        let z5 = (z3 + z4) * 9633;
        let (o0, o1, o2, o3) = (o0 * 2446, o1 * 16819, o2 * 25172, o3 * 12299);
        let (z1, z2) = (z1 * -7373, z2 * -20995);
        let (z3, z4) = (z3 * -16069 + z5, z4 * -3196 + z5);
        let (o0, o1, o2, o3) = (o0 + z1 + z3, o1 + z2 + z4, o2 + z2 + z3, o3 + z1 + z4);
        [
            t10 + o3,
            t11 + o2,
            t12 + o1,
            t13 + o0,
            t13 - o0,
            t12 - o1,
            t11 - o2,
            t10 - o3,
        ]
    };
    let mut ws = [0i64; 64];
    for c in 0..8 {
        let col = pass(std::array::from_fn(|r| coef[r * 8 + c]));
        for r in 0..8 {
            ws[r * 8 + c] = descale(col[r], CONST_BITS - pass1);
        }
    }
    let mut out = [0i64; 64];
    for r in 0..8 {
        let row = pass(std::array::from_fn(|c| ws[r * 8 + c]));
        for c in 0..8 {
            out[r * 8 + c] = descale(row[c], CONST_BITS + pass1 + 3);
        }
    }
    out
}

fn decode_scan(
    data: &[u8],
    f: &Frame,
    dc: &Huffman,
    ac: &Huffman,
) -> Result<(u32, u32, Vec<u16>), String> {
    let (w, h) = (f.width, f.height);
    let (bw, bh) = (w.div_ceil(8), h.div_ceil(8));
    let mut out = vec![0u16; w * h];
    let mut bits = Bits {
        data,
        pos: 0,
        acc: 0,
        n: 0,
        marker: false,
    };
    let (level, top) = (1i64 << (f.precision - 1), (1i64 << f.precision) - 1);
    let q = &f.quant;
    let mut pred = 0i32;
    for block in 0..bw * bh {
        if f.restart_interval > 0 && block > 0 && block % f.restart_interval == 0 {
            bits.restart();
            pred = 0;
        }
        let mut coef = [0i64; 64];
        let t = bits.decode(dc)?;
        pred = pred.wrapping_add(bits.receive(t));
        coef[0] = i64::from(pred) * i64::from(q[0]);
        let mut k = 1;
        while k < 64 {
            let rs = bits.decode(ac)?;
            let (run, size) = (usize::from(rs >> 4), rs & 15);
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                break;
            }
            k += run;
            if k > 63 {
                return Err("corrupt JPEG data (coefficient index past 63)".into());
            }
            coef[ZIGZAG[k]] = i64::from(bits.receive(size)) * i64::from(q[k]);
            k += 1;
        }
        let samples = idct_islow(&coef, f.precision);
        let (bx, by) = (block % bw * 8, block / bw * 8);
        for y in 0..8.min(h - by) {
            for x in 0..8.min(w - bx) {
                let v = samples[y * 8 + x] + level;
                out[(by + y) * w + bx + x] = v.clamp(0, top) as u16;
            }
        }
    }
    Ok((w as u32, h as u32, out))
}
