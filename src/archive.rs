//! A streaming POSIX ustar writer: enough of `tar` for the owner's "export everything"
//! archive, which any `tar`, file manager or archive tool opens.
//!
//! The format (POSIX.1-1988 ustar, as `tar --format=ustar` writes it): each file is a
//! 512-byte header, then its bytes, padded with zeros to a multiple of 512; the archive
//! ends with two zero blocks. Header fields used here: `name` (100 bytes) and `prefix`
//! (155 bytes, joined to the name with `/` for longer paths), `mode`, `uid`, `gid`,
//! `size`, `mtime` (octal text, NUL-terminated), `chksum` (the sum of the header's
//! bytes with this field read as spaces: six octal digits, NUL, space), `typeflag`
//! (`0`, a regular file), `magic` `ustar\0` and `version` `00`. A size too large for
//! eleven octal digits (8 GiB and more) is written in the base-256 form GNU tar and
//! libarchive read (first byte 0x80, then the number big-endian).
//!
//! The caller says each file's size up front ([`TarWriter::begin`]), writes exactly
//! that many bytes through [`std::io::Write`], then calls [`TarWriter::end`]: nothing
//! is buffered beyond what the underlying writer buffers, so an archive of any size
//! streams in constant memory.

use std::io::{self, Write};

const BLOCK: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive entry name {0:?} is not a short ASCII path")]
    BadName(String),
    #[error("archive entry {name:?}: {written} bytes written, {size} announced")]
    WrongSize {
        name: String,
        size: u64,
        written: u64,
    },
    #[error("archive: {0}")]
    Io(#[from] io::Error),
}

/// Writes a ustar archive to `W`.
pub struct TarWriter<W: Write> {
    out: W,
    /// The open entry: its name, announced size and bytes written so far.
    open: Option<(String, u64, u64)>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter { out, open: None }
    }

    /// Starts a regular file (mode 0600) of `size` bytes modified at `mtime_secs`.
    pub fn begin(&mut self, name: &str, size: u64, mtime_secs: u64) -> Result<(), ArchiveError> {
        if self.open.is_some() {
            self.end()?;
        }
        let header = header(name, size, mtime_secs)?;
        self.out.write_all(&header)?;
        self.open = Some((name.to_owned(), size, 0));
        Ok(())
    }

    /// Ends the open file: checks its size and pads it to a whole block.
    pub fn end(&mut self) -> Result<(), ArchiveError> {
        let Some((name, size, written)) = self.open.take() else {
            return Ok(());
        };
        if written != size {
            return Err(ArchiveError::WrongSize {
                name,
                size,
                written,
            });
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])?;
        Ok(())
    }

    /// A whole file at once.
    pub fn append(&mut self, name: &str, data: &[u8], mtime_secs: u64) -> Result<(), ArchiveError> {
        self.begin(name, data.len() as u64, mtime_secs)?;
        self.write_all(data)?;
        self.end()
    }

    /// Ends the open file, writes the two zero blocks that end an archive, flushes,
    /// and hands back the writer.
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        self.end()?;
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for TarWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some((_, size, written)) = self.open.as_mut() else {
            return Err(io::Error::other("no archive entry is open"));
        };
        if *written + buf.len() as u64 > *size {
            return Err(io::Error::other("more bytes than the entry announced"));
        }
        let n = self.out.write(buf)?;
        *written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    true
}

/// One file's header block.
fn header(name: &str, size: u64, mtime_secs: u64) -> Result<[u8; BLOCK], ArchiveError> {
    let bad = || ArchiveError::BadName(name.to_owned());
    if name.is_empty() || !name.is_ascii() || name.bytes().any(|b| b == 0) {
        return Err(bad());
    }
    // Short names go whole into `name`; longer ones split at a `/` into prefix/name.
    let (prefix, rest) = if name.len() <= 100 {
        ("", name)
    } else {
        let split = name
            .char_indices()
            .filter(|&(i, c)| c == '/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0)
            .map(|(i, _)| i)
            .next()
            .ok_or_else(bad)?;
        (&name[..split], &name[split + 1..])
    };
    let mut h = [0u8; BLOCK];
    h[..rest.len()].copy_from_slice(rest.as_bytes());
    octal(&mut h[100..108], 0o600);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if !octal(&mut h[124..136], size) {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], mtime_secs.min(0o77_777_777_777));
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, size, data) of each file, checking every header's checksum and magic.
    fn parse(archive: &[u8]) -> Vec<(String, u64, Vec<u8>)> {
        assert_eq!(archive.len() % BLOCK, 0, "whole blocks");
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let h = &archive[at..at + BLOCK];
            if h.iter().all(|&b| b == 0) {
                assert!(archive[at..].iter().all(|&b| b == 0), "zero blocks end it");
                assert_eq!(archive.len() - at, 2 * BLOCK, "two zero blocks");
                return out;
            }
            assert_eq!(&h[257..265], b"ustar\x0000");
            let field = |r: std::ops::Range<usize>| {
                String::from_utf8(h[r].iter().copied().take_while(|&b| b != 0).collect())
                    .expect("ascii")
            };
            let mut sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            sum = sum - h[148..156].iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
            let stored = u32::from_str_radix(field(148..154).trim(), 8).expect("octal");
            assert_eq!(sum, stored, "checksum");
            let size = if h[124] == 0x80 {
                u64::from_be_bytes(h[128..136].try_into().expect("8 bytes"))
            } else {
                u64::from_str_radix(&field(124..136), 8).expect("octal size")
            };
            let prefix = field(345..500);
            let name = if prefix.is_empty() {
                field(0..100)
            } else {
                format!("{prefix}/{}", field(0..100))
            };
            let data_at = at + BLOCK;
            let data = archive[data_at..data_at + size as usize].to_vec();
            out.push((name, size, data));
            at = data_at + (size as usize).div_ceil(BLOCK) * BLOCK;
        }
    }

    #[test]
    fn files_round_trip_with_padding_checksums_and_the_end_marker() {
        let mut tar = TarWriter::new(Vec::new());
        tar.append("data.json", b"{\"a\":1}", 1_700_000_000)
            .expect("append");
        tar.begin("recordings/front/0000000000000001.mp4", 1024, 5)
            .expect("begin");
        tar.write_all(&[7u8; 1000]).expect("write");
        tar.write_all(&[8u8; 24]).expect("write");
        tar.end().expect("end");
        tar.append("empty", b"", 0).expect("empty file");
        let bytes = tar.finish().expect("finish");
        let files = parse(&bytes);
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].0, "data.json");
        assert_eq!(files[0].2, b"{\"a\":1}");
        assert_eq!(files[1].0, "recordings/front/0000000000000001.mp4");
        assert_eq!(files[1].1, 1024);
        assert_eq!(&files[1].2[998..1002], &[7, 7, 8, 8]);
        assert_eq!(files[2].1, 0);
    }

    #[test]
    fn long_names_use_the_prefix_and_bad_names_are_refused() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let mut tar = TarWriter::new(Vec::new());
        tar.append(&long, b"x", 0).expect("prefix/name split");
        let files = parse(&tar.finish().expect("finish"));
        assert_eq!(files[0].0, long);
        for bad in ["", "caf\u{e9}", &"x".repeat(101), "a\0b"] {
            assert!(
                matches!(header(bad, 0, 0), Err(ArchiveError::BadName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_wrong_size_is_an_error_not_a_corrupt_archive() {
        let mut tar = TarWriter::new(Vec::new());
        tar.begin("short", 10, 0).expect("begin");
        tar.write_all(b"abc").expect("write");
        assert!(matches!(
            tar.end(),
            Err(ArchiveError::WrongSize { written: 3, .. })
        ));
        tar.begin("long", 2, 0).expect("begin");
        assert!(tar.write_all(b"abc").is_err(), "more than announced");
    }

    #[test]
    fn sizes_of_8_gib_and_more_use_base_256() {
        let h = header("big", 9 << 30, 0).expect("header");
        assert_eq!(h[124], 0x80);
        assert_eq!(
            u64::from_be_bytes(h[128..136].try_into().expect("8")),
            9 << 30
        );
        let h = header("small", (8 << 30) - 1, 0).expect("header");
        assert_eq!(&h[124..136], b"77777777777\0");
    }
}
