//! The `gantry:step` metadata, from the section's JSON: the model every
//! plugin describes itself with (names, inputs, defaults, permissions).
//!
//! Properties: nothing panics; accepted metadata serialises and reads
//! back equal (absent and empty `inputs` stay apart), and survives being
//! written into a module and read out of it.

#![no_main]

use gantry::plugin::metadata::{Metadata, annotate, read};
use libfuzzer_sys::fuzz_target;

/// The smallest core module: magic and version, no sections.
const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

fuzz_target!(|bytes: &[u8]| {
    let Ok(meta) = Metadata::from_bytes(bytes) else {
        return;
    };
    let json = serde_json::to_string(&meta).expect("metadata serialises");
    let again = Metadata::from_json(&json).expect("serialised metadata is valid");
    assert_eq!(again, meta, "{json}");
    let text = std::str::from_utf8(bytes).expect("accepted metadata is UTF-8");
    let module = annotate(EMPTY_MODULE, text).expect("accepted metadata annotates");
    assert_eq!(read(&module).ok().flatten().as_ref(), Some(&meta));
});
