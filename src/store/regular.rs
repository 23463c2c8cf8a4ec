//! Opening an existing file under the data directory: a regular file, never a
//! FIFO, a device node or a symbolic link.
//!
//! Whoever can write the data disk can plant anything under a recording's name. A
//! plain `open` of a FIFO blocks until a writer comes (a read-write open does not,
//! but its first read does), and one of a device node reads the device: start-up
//! recovery, `check`, playback or a deletion would hang on it. So every open of an
//! existing recording, thumbnail, share copy or viewer key file goes through
//! [`open_regular`]: `O_NONBLOCK` (a FIFO opens at once; regular files ignore the
//! flag, so it is simply kept), `O_NOFOLLOW` (a correct data directory holds no
//! symbolic link in place of a file, and following one would read or overwrite
//! whatever it points at) and `O_CLOEXEC` (std sets it anyway), then `fstat` of the
//! handle: anything but a regular file is refused with
//! [`StoreError::NotARegularFile`], naming the path. Creating a new file is not done
//! here (`create_new` never opens what is already there).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::StoreError;

/// What an open is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
    Write,
}

/// Opens the existing regular file `path` (see the module doc); `action` names the
/// open in an error ("open recording", "open for shredding", …). A missing file is
/// `StoreError::Io` with `NotFound` (see [`StoreError::is_not_found`]).
pub(crate) fn open_regular(
    path: &Path,
    access: Access,
    action: &'static str,
) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(access != Access::Write)
        .write(access != Access::Read)
        .custom_flags(
            (rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::NONBLOCK
                | rustix::fs::OFlags::CLOEXEC)
                .bits() as i32,
        )
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a symbolic link.
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                StoreError::NotARegularFile {
                    path: path.into(),
                    kind: "a symbolic link",
                }
            }
            // A FIFO opened write-only without a reader, or a socket.
            Some(code) if code == rustix::io::Errno::NXIO.raw_os_error() => {
                StoreError::NotARegularFile {
                    path: path.into(),
                    kind: "a FIFO or a socket",
                }
            }
            _ => StoreError::io(action, path, e),
        })?;
    let file_type = file
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?
        .file_type();
    if file_type.is_file() {
        return Ok(file);
    }
    let kind = if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device node"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(StoreError::NotARegularFile {
        path: path.into(),
        kind,
    })
}

/// [`open_regular`] for reading.
pub(crate) fn open_regular_read(path: &Path, action: &'static str) -> Result<File, StoreError> {
    open_regular(path, Access::Read, action)
}

/// Reads the whole regular file `path` (a viewer key file: a few hundred bytes).
pub(crate) fn read_regular(path: &Path, action: &'static str) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_regular_read(path, action)?
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(action, path, e))?;
    Ok(bytes)
}

impl StoreError {
    /// Whether this is an I/O error saying the file is not there.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}
