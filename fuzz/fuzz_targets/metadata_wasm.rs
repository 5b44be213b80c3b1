//! The `gantry:step` metadata reader, from a plugin's raw bytes: any file
//! named as a plugin reaches it before anything else looks at it.
//!
//! Properties: nothing panics; metadata read from a module, written back
//! with `annotate`, reads back the same, and the section then holds
//! exactly the JSON written.

#![no_main]

use gantry::plugin::metadata::{annotate, read, section};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|module: &[u8]| {
    let raw = section(module);
    let Ok(Some(meta)) = read(module) else {
        return;
    };
    assert!(matches!(raw, Ok(Some(_))));
    let json = serde_json::to_string(&meta).expect("metadata serialises");
    let annotated = annotate(module, &json).expect("a readable module can be annotated");
    assert_eq!(section(&annotated).ok().flatten(), Some(json.as_bytes()));
    assert_eq!(read(&annotated).ok().flatten().as_ref(), Some(&meta));
});
