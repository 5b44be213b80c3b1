//! `__NAME__`: a gantry step. It greets `who` and sets the output `message`.
//!
//! Its metadata (inputs, outputs, permissions) is in `gantry-step.json`,
//! embedded in the module by `gantry_sdk::metadata!`, so gantry checks every
//! step that uses it before a run.

use gantry_sdk::{Context, Error, Result, Step};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Greet);

/// The step.
struct Greet;

impl Step for Greet {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let who: String = ctx.input_or("who", "world".to_owned())?;
        let message = greeting(&who)?;
        println!("{message}");
        ctx.set_output("message", &message)?;
        Ok(())
    }
}

/// The greeting for `who`, which must be a single line.
fn greeting(who: &str) -> Result<String> {
    if who.contains(['\n', '\r']) {
        return Err(Error::new("input `who` must be a single line"));
    }
    Ok(format!("Hello, {who}!"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;

    #[test]
    fn greets() {
        assert_eq!(greeting("gantry").unwrap(), "Hello, gantry!");
        assert!(greeting("two\nlines").is_err());
    }

    #[test]
    fn sets_the_output() {
        let output = std::env::temp_dir().join(format!("__NAME__-output-{}", std::process::id()));
        std::fs::write(&output, "").unwrap();
        let ctx = Context::from_vars([
            ("INPUT_WHO", "tests".to_owned()),
            ("GANTRY_OUTPUT", output.to_str().unwrap().to_owned()),
        ]);
        Greet.run(&ctx).unwrap();
        let written = std::fs::read_to_string(&output).unwrap();
        std::fs::remove_file(&output).unwrap();
        assert_eq!(written, "message=Hello, tests!\n");
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "__NAME__");
        assert!(meta.inputs.as_ref().unwrap().contains_key("who"));
    }
}
