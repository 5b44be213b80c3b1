//! The guests the benchmark runs. Every figure that is compared with a
//! baseline runs the very same bytes in both: a module goes to the floor
//! loop and to gantry unchanged.

/// The no-op step: exports `_start` and a memory, imports nothing.
const NOOP_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// What makes the `probe` guest a no-op: it reads its input, then exits
/// with status 0 through `proc_exit`, as a Rust program ending with
/// `std::process::exit(0)` does.
pub const PROBE_NOOP_ENV: [(&str, &str); 2] = [("INPUT_ACTION", "exit"), ("INPUT_CODE", "0")];
/// The same, as the step's `with:` (gantry turns `with: {code: 0}` into
/// `INPUT_CODE=0`).
pub const PROBE_NOOP_WITH: [(&str, &str); 2] = [("action", "exit"), ("code", "0")];

/// The no-op `.wat` step, encoded.
pub fn noop() -> Vec<u8> {
    wat::parse_str(NOOP_WAT).expect("the no-op module is valid")
}

/// The Rust `probe` guest of the integration tests, built for
/// wasm32-wasip1 (its size is printed; about 150 KB).
pub fn probe() -> Vec<u8> {
    std::fs::read(gantry_tests::PROBE_WASM).unwrap_or_else(|e| {
        panic!(
            "cannot read the probe guest `{}`: {e}",
            gantry_tests::PROBE_WASM
        )
    })
}

/// A module of about `target` bytes, nearly all of it code: functions
/// with loops, branches, loads and stores, so compiling it costs what
/// compiling that much real code does. `_start` calls the first one.
/// The result is deterministic; sizes within 2% of `target`.
pub fn sized_plugin(target: usize) -> Vec<u8> {
    // Measure one size, then scale the function count to the target.
    let probe_count = 64;
    let per_function = (wat::parse_str(sized_wat(probe_count))
        .expect("the generated module is valid")
        .len()
        / probe_count)
        .max(1);
    let mut count = (target / per_function).max(1);
    loop {
        let bytes = wat::parse_str(sized_wat(count)).expect("the generated module is valid");
        let off = bytes.len() as f64 / target as f64;
        if (0.98..=1.02).contains(&off) || count <= 1 {
            return bytes;
        }
        count = ((count as f64 / off).round() as usize).max(1);
    }
}

fn sized_wat(functions: usize) -> String {
    let mut wat = String::from("(module\n  (memory (export \"memory\") 1)\n");
    for k in 0..functions {
        // Each function calls the one before it, so none is trivially dead.
        let call = if k == 0 {
            "(local.get $acc)".to_owned()
        } else {
            format!(
                "(call $f{} (i32.and (local.get $acc) (i32.const 3)))",
                k - 1
            )
        };
        let mut body = String::new();
        for stanza in 0..4 {
            let c = k * 131 + stanza * 17 + 1;
            body.push_str(&format!(
                "      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const {c})) \
                 (i32.xor (local.get $i) (i32.const {}))))\n\
                 \x20     (if (i32.and (local.get $acc) (i32.const {}))\n\
                 \x20       (then (local.set $acc (i32.rotl (local.get $acc) (i32.const {}))))\n\
                 \x20       (else (local.set $acc (i32.sub (local.get $acc)\n\
                 \x20         (i32.load (i32.and (local.get $i) (i32.const 1020)))))))\n\
                 \x20     (i64.store (i32.and (local.get $acc) (i32.const 1016))\n\
                 \x20       (i64.mul (i64.extend_i32_u (local.get $acc)) (i64.const {})))\n",
                c * 7,
                1 << (stanza % 5),
                (c % 31) + 1,
                c as u64 * 2_654_435_761
            ));
        }
        wat.push_str(&format!(
            "  (func $f{k} (param $n i32) (result i32) (local $i i32) (local $acc i32)\n\
             \x20   (local.set $acc (i32.const {k}))\n\
             \x20   (block $done (loop $top\n\
             \x20     (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n\
             {body}\
             \x20     (local.set $i (i32.add (local.get $i) (i32.const 1)))\n\
             \x20     (br $top)))\n\
             \x20   {call})\n"
        ));
    }
    wat.push_str(&format!(
        "  (func (export \"_start\") (drop (call $f{} (i32.const 2)))))\n",
        functions.saturating_sub(1)
    ));
    wat
}
