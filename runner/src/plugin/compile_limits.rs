//! What a plugin may ask of the compiler, checked before compiling.
//!
//! Compiling is the one thing gantry does with a plugin before any step's
//! limits apply, and its cost grows with the module: a 10 MB module of a
//! million tiny functions takes minutes and gigabytes to compile. So the
//! module's sizes are read first (a cheap pass of `wasmparser` over the
//! verified bytes) and checked against limits each plugin may raise in the
//! manifest (`plugins.<alias>.limits`), and the compilation itself has a
//! deadline. A plugin past either is refused before any step runs, naming
//! the plugin, the limit and how to raise it. The sizes bound what the
//! compiler can be made to allocate; there is no separate memory cap on
//! compiling.

use std::time::Duration;

use wasmparser::{Parser, Payload};

/// The limits one plugin is compiled under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Functions defined (imports not counted).
    pub functions: u64,
    /// Bytes of function bodies.
    pub code_bytes: u64,
    /// Locals declared by one function.
    pub locals: u64,
    /// Bytes of data segments.
    pub data_bytes: u64,
    /// How long compiling may take.
    pub deadline: Duration,
}

impl Default for CompileLimits {
    /// Well above what compilers emit for real steps (a Rust step has a
    /// few thousand functions and well under 10 MiB of code).
    fn default() -> Self {
        CompileLimits {
            functions: 100_000,
            code_bytes: 64 << 20,
            locals: 50_000,
            data_bytes: 128 << 20,
            deadline: Duration::from_secs(120),
        }
    }
}

/// The manifest keys that raise each limit, for messages and docs.
pub const FUNCTIONS_KEY: &str = "functions";
pub const CODE_KEY: &str = "code-mb";
pub const LOCALS_KEY: &str = "locals";
pub const DATA_KEY: &str = "data-mb";
pub const DEADLINE_KEY: &str = "compile-seconds";

impl CompileLimits {
    /// Reads the module's sizes and says which limit it passes, if any.
    /// Bytes that do not parse are left to the compiler to refuse.
    pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
        let mut functions = 0u64;
        let mut code_bytes = 0u64;
        let mut data_bytes = 0u64;
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else { return Ok(()) };
            match payload {
                Payload::CodeSectionStart { count, size, .. } => {
                    functions += u64::from(count);
                    code_bytes += u64::from(size);
                    self.within(functions, self.functions, FUNCTIONS_KEY, "functions")?;
                    self.within_mb(code_bytes, self.code_bytes, CODE_KEY, "code")?;
                }
                Payload::CodeSectionEntry(body) => {
                    let mut locals = 0u64;
                    let Ok(reader) = body.get_locals_reader() else {
                        return Ok(());
                    };
                    for local in reader {
                        let Ok((count, _)) = local else { return Ok(()) };
                        locals += u64::from(count);
                    }
                    self.within(locals, self.locals, LOCALS_KEY, "locals in one function")?;
                }
                Payload::DataSection(reader) => {
                    for data in reader {
                        let Ok(data) = data else { return Ok(()) };
                        data_bytes += data.data.len() as u64;
                    }
                    self.within_mb(data_bytes, self.data_bytes, DATA_KEY, "data")?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn within(&self, found: u64, limit: u64, key: &str, what: &str) -> Result<(), String> {
        if found > limit {
            return Err(format!(
                "it has {found} {what}, more than the compile limit of {limit}; raise it with `limits: {{ {key}: N }}` on the plugin in the manifest"
            ));
        }
        Ok(())
    }

    fn within_mb(&self, found: u64, limit: u64, key: &str, what: &str) -> Result<(), String> {
        if found > limit {
            return Err(format!(
                "it has {} MiB of {what}, more than the compile limit of {} MiB; raise it with `limits: {{ {key}: N }}` on the plugin in the manifest",
                found.div_ceil(1 << 20),
                limit >> 20
            ));
        }
        Ok(())
    }

    /// Why a compilation that ran out of time was stopped.
    pub fn too_slow(&self) -> String {
        format!(
            "compiling it took longer than {} s, its compile deadline; raise it with `limits: {{ {DEADLINE_KEY}: N }}` on the plugin in the manifest",
            self.deadline.as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(functions: usize, locals: u32, data: usize) -> Vec<u8> {
        let mut wat = String::from("(module (memory 2)");
        for _ in 0..functions {
            wat.push_str(&format!(
                "(func (local {}))",
                "i32 ".repeat(locals as usize)
            ));
        }
        wat.push_str(&format!("(data (i32.const 0) \"{}\"))", "x".repeat(data)));
        wat::parse_str(&wat).unwrap()
    }

    #[test]
    fn each_size_is_checked_against_its_limit() {
        let small = CompileLimits {
            functions: 10,
            code_bytes: 1 << 20,
            locals: 8,
            data_bytes: 1 << 20,
            deadline: Duration::from_secs(1),
        };
        assert!(small.check(&module(10, 8, 100)).is_ok());
        let error = small.check(&module(11, 1, 0)).unwrap_err();
        assert!(
            error.contains("11 functions, more than the compile limit of 10"),
            "{error}"
        );
        assert!(error.contains("`limits: { functions: N }`"), "{error}");
        let error = small.check(&module(1, 9, 0)).unwrap_err();
        assert!(error.contains("locals in one function"), "{error}");
        let error = small.check(&module(1, 0, (1 << 20) + 1)).unwrap_err();
        assert!(error.contains("MiB of data"), "{error}");
        assert!(small.check(b"not wasm").is_ok(), "left to the compiler");
        assert!(CompileLimits::default().check(&module(100, 4, 10)).is_ok());
    }
}
