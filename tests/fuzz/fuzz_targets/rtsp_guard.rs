//! The RTSP size guard (`porchlight::camera::guard::FrameGuard`) sees every byte a
//! camera sends. The first byte sets how the rest is split into reads, so framing
//! across read boundaries is exercised; it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight::camera::guard::FrameGuard;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut guard = FrameGuard::default();
    for chunk in rest.chunks(usize::from(split).max(1)) {
        if guard.feed(chunk).is_err() {
            break;
        }
    }
});
