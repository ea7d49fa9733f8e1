//! Fuzz target: arbitrary bytes as `xconf.txt`, through the path the store takes at start (the
//! one-time zone path rewrite, then `Config::from_bytes`). Besides not panicking, what was loaded
//! must survive a write: the text the store would write loads back to the same values, comments
//! and kept lines, with no new problem (a rewrite never loses or changes a setting).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsh::store::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some((rewritten, _)) = xsh::store::zone_paths::rewrite(&text) {
        let _ = Config::from_text(&rewritten);
    }
    let cfg = Config::from_bytes(data);
    let written = cfg.to_text();
    let again = Config::from_text(&written);
    assert_eq!(again.values, cfg.values, "values changed by a rewrite:\n{written}");
    assert_eq!(again.kept, cfg.kept, "kept lines changed by a rewrite:\n{written}");
    assert_eq!(again.comments, cfg.comments, "comments changed by a rewrite:\n{written}");
});
