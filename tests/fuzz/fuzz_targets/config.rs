//! The config parser (`porchlight::config::Config::parse`): installers and people edit
//! the file by hand. Any text must give a config or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = porchlight::config::Config::parse(std::path::Path::new("fuzz.toml"), text);
    }
});
