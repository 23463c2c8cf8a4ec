//! A tiny ISO BMFF box writer: nested boxes into a `Vec<u8>`, sizes patched on close.
//!
//! Boxes written here are always below 4 GiB (callers bound their inputs: a fragment by
//! [`super::fragmented`]'s checks, a `moov` by [`super::progressive`]'s sample limit), so
//! only the 32-bit size form is produced. The one box that may exceed 4 GiB, an export's
//! `mdat`, has its header written by hand with `largesize`.

use bytes::BufMut;

/// Writes a box of type `fourcc` whose body is produced by `body`.
pub(super) fn write_box(out: &mut Vec<u8>, fourcc: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.put_u32(0); // size, patched below
    out.put_slice(fourcc);
    body(out);
    let size = u32::try_from(out.len() - start)
        .expect("boxes built in memory stay below 4 GiB: callers bound sample counts and sizes");
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a "full box": a box whose body starts with a version byte and 24 bits of flags.
pub(super) fn write_full_box(
    out: &mut Vec<u8>,
    fourcc: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    debug_assert!(flags < 1 << 24, "full box flags are 24 bits");
    write_box(out, fourcc, |out| {
        out.put_u32(u32::from(version) << 24 | (flags & 0x00FF_FFFF));
        body(out);
    })
}

/// Writes an `mdat` header for a payload of `payload_len` bytes: 8 bytes normally, 16 bytes
/// (`size` = 1 followed by a 64-bit `largesize`) when the box would not fit in 32 bits.
pub(super) fn write_mdat_header(out: &mut Vec<u8>, payload_len: u64) {
    match u32::try_from(payload_len + 8) {
        Ok(size) => {
            out.put_u32(size);
            out.put_slice(b"mdat");
        }
        Err(_) => {
            out.put_u32(1);
            out.put_slice(b"mdat");
            out.put_u64(payload_len + 16);
        }
    }
}

/// The length [`write_mdat_header`] will produce for `payload_len`.
pub(super) fn mdat_header_len(payload_len: u64) -> u64 {
    if payload_len + 8 <= u64::from(u32::MAX) {
        8
    } else {
        16
    }
}

/// The identity matrix used by `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
pub(super) const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_their_sizes() {
        let mut out = Vec::new();
        write_box(&mut out, b"moov", |out| {
            write_full_box(out, b"mvhd", 1, 0x020001, |out| out.put_u16(0xABCD));
            write_box(out, b"free", |_| {});
        });
        assert_eq!(
            out,
            [
                0, 0, 0, 30, b'm', b'o', b'o', b'v', // moov: 8 + 14 + 8
                0, 0, 0, 14, b'm', b'v', b'h', b'd', 1, 2, 0, 1, 0xAB, 0xCD, // full box
                0, 0, 0, 8, b'f', b'r', b'e', b'e',
            ]
        );
    }

    #[test]
    fn mdat_header_switches_to_largesize_above_4_gib() {
        let mut small = Vec::new();
        write_mdat_header(&mut small, 100);
        assert_eq!(small, [0, 0, 0, 108, b'm', b'd', b'a', b't']);
        assert_eq!(mdat_header_len(100), 8);

        let limit = u64::from(u32::MAX) - 8;
        assert_eq!(mdat_header_len(limit), 8);
        assert_eq!(mdat_header_len(limit + 1), 16);

        let mut big = Vec::new();
        write_mdat_header(&mut big, 5 << 30);
        assert_eq!(big.len(), 16);
        assert_eq!(&big[..8], &[0, 0, 0, 1, b'm', b'd', b'a', b't']);
        assert_eq!(
            u64::from_be_bytes(big[8..].try_into().unwrap()),
            (5 << 30) + 16
        );
    }
}
