//! Fuzz target: one line of the shell language through `xsh::parse::parse_line`. Besides not
//! panicking, an error's column must point into the line (1-based, at most one past its end, 0
//! for the whole line), since the shell shows it under the user's text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The shell refuses non-UTF-8 input before parsing (an ERROR naming the byte).
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = xsh::parse::parse_line(line) {
        let chars = line.chars().count();
        assert!(
            e.column <= chars + 1,
            "column {} past the end of a {chars}-character line: {line:?}",
            e.column
        );
    }
});
