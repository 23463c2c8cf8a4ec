//! Reading boxes from untrusted bytes: top-level headers through [`ReadAt`] (a box that
//! runs past the end is reported as `None`, the caller's torn tail), bodies into memory only
//! up to a caller's cap, and a bounds-checked cursor over an in-memory box's fields and
//! children. Nothing here panics on any input or allocates more than the bytes present.

use super::{FourCc, Mp4Error, ReadAt};

/// A top-level box header read from the file.
pub(super) struct Header {
    pub(super) fourcc: FourCc,
    pub(super) offset: u64,
    pub(super) header_len: u64,
    pub(super) size: u64,
}

impl Header {
    pub(super) fn end(&self) -> u64 {
        self.offset + self.size
    }

    pub(super) fn malformed(&self, reason: impl Into<String>) -> Mp4Error {
        Mp4Error::Malformed {
            fourcc: self.fourcc,
            offset: self.offset,
            reason: reason.into(),
        }
    }

    pub(super) fn data<'a>(&self, body: &'a [u8]) -> BoxData<'a> {
        BoxData {
            fourcc: self.fourcc,
            offset: self.offset,
            body_offset: self.offset + self.header_len,
            body,
            pos: 0,
        }
    }
}

/// Reads the header at `offset`; `None` if the box (header or body) runs past `len`.
pub(super) fn read_header(
    r: &mut impl ReadAt,
    offset: u64,
    len: u64,
) -> Result<Option<Header>, Mp4Error> {
    let avail = len.saturating_sub(offset);
    if avail < 8 {
        return Ok(None);
    }
    let mut buf = [0u8; 16];
    read_exact(r, offset, &mut buf[..8])?;
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let fourcc = FourCc([buf[4], buf[5], buf[6], buf[7]]);
    let (size, header_len) = match size32 {
        0 => {
            return Err(Mp4Error::Malformed {
                fourcc,
                offset,
                reason: "size 0 (to end of file) is never written here".into(),
            })
        }
        1 => {
            if avail < 16 {
                return Ok(None);
            }
            read_exact(r, offset + 8, &mut buf[8..16])?;
            (
                u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes")),
                16,
            )
        }
        n => (u64::from(n), 8),
    };
    let header = Header {
        fourcc,
        offset,
        header_len,
        size,
    };
    if size < header_len {
        return Err(header.malformed(format!("size {size} is smaller than its header")));
    }
    Ok((size <= avail).then_some(header))
}

pub(super) fn read_body(r: &mut impl ReadAt, h: &Header, max: u64) -> Result<Vec<u8>, Mp4Error> {
    if h.size > max {
        return Err(h.malformed(format!("{} bytes exceed the {max}-byte limit", h.size)));
    }
    let mut body = vec![0u8; usize::try_from(h.size - h.header_len).expect("below max")];
    read_exact(r, h.offset + h.header_len, &mut body)?;
    Ok(body)
}

fn read_exact(r: &mut impl ReadAt, offset: u64, buf: &mut [u8]) -> Result<(), Mp4Error> {
    r.read_exact_at(offset, buf)
        .map_err(|error| Mp4Error::Read { offset, error })
}

/// A box held in memory, with a cursor over its body for reading fields.
#[derive(Clone, Copy)]
pub(super) struct BoxData<'a> {
    pub(super) fourcc: FourCc,
    pub(super) offset: u64,
    body_offset: u64,
    body: &'a [u8],
    pos: usize,
}

impl<'a> BoxData<'a> {
    pub(super) fn malformed(&self, reason: impl Into<String>) -> Mp4Error {
        Mp4Error::Malformed {
            fourcc: self.fourcc,
            offset: self.offset,
            reason: reason.into(),
        }
    }

    pub(super) fn unsupported(&self, what: impl Into<String>) -> Mp4Error {
        Mp4Error::Unsupported {
            fourcc: self.fourcc,
            offset: self.offset,
            what: what.into(),
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        if n > self.remaining() {
            return Err(self.malformed(format!("body ends {} bytes in", self.body.len())));
        }
        let s = &self.body[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<(), Mp4Error> {
        self.take(n).map(|_| ())
    }

    pub(super) fn u32(&mut self) -> Result<u32, Mp4Error> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub(super) fn u64(&mut self) -> Result<u64, Mp4Error> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// Version and flags of a full box.
    pub(super) fn full_header(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }

    /// A 32-bit field in version 0, 64-bit in version 1.
    pub(super) fn uint_v(&mut self, version: u8) -> Result<u64, Mp4Error> {
        match version {
            0 => self.u32().map(u64::from),
            1 => self.u64(),
            v => Err(self.unsupported(format!("version {v}"))),
        }
    }

    /// The child boxes in the rest of the body. Each must fit inside this box.
    pub(super) fn children(&self) -> Result<Vec<BoxData<'a>>, Mp4Error> {
        let mut kids = Vec::new();
        let mut rest = *self;
        while rest.remaining() > 0 {
            let start = rest.pos;
            let offset = rest.body_offset + start as u64;
            let size32 = rest.u32()?;
            let fourcc = FourCc(rest.take(4)?.try_into().expect("4 bytes"));
            let size = match size32 {
                1 => rest.u64()?,
                n => u64::from(n),
            };
            let header_len = rest.pos - start;
            let child = |reason: String| Mp4Error::Malformed {
                fourcc,
                offset,
                reason,
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s >= header_len && s <= self.body.len() - start)
                .ok_or_else(|| {
                    child(format!(
                        "size {size} does not fit in its {} parent",
                        self.fourcc
                    ))
                })?;
            kids.push(BoxData {
                fourcc,
                offset,
                body_offset: offset + header_len as u64,
                body: &self.body[rest.pos..start + size],
                pos: 0,
            });
            rest.pos = start + size;
        }
        Ok(kids)
    }

    /// The whole box (header included) of a child, sliced from its parent's body.
    pub(super) fn body_with_header(&self, parent: &BoxData<'a>) -> &'a [u8] {
        let start = usize::try_from(self.offset - parent.body_offset).expect("child of parent");
        let end = usize::try_from(self.body_offset - parent.body_offset).expect("child of parent")
            + self.body.len();
        &parent.body[start..end]
    }

    /// The first child of type `fourcc`, which must exist.
    pub(super) fn child(&self, fourcc: &[u8; 4]) -> Result<BoxData<'a>, Mp4Error> {
        self.children()?
            .into_iter()
            .find(|b| b.fourcc.0 == *fourcc)
            .ok_or_else(|| self.malformed(format!("no {} box", FourCc(*fourcc))))
    }
}
