//! Cookie parsing (`porchlight::web::cookie_in`), which sees every request's `Cookie`
//! headers before anyone is logged in. Lines of the input are separate header values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["__Host-porchlight", "__Host-porchlight-device", ""] {
        if let Some(v) = porchlight::web::cookie_in(text.lines(), name) {
            assert!(!v.is_empty() && v.len() <= 128, "{v:?}");
            assert!(!v.contains(';'), "a value never spans cookies: {v:?}");
            assert!(text.contains(v));
        }
    }
});
