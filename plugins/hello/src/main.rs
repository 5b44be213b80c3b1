//! `hello`: greets `who` and hands the greeting on.
//!
//! Inputs: `who` (default `world`), `greeting` (default `Hello`).
//! Outputs: `message`, the full greeting. Exports `GREETED` to later steps
//! and adds a line to the run's summary. The smallest complete example of a
//! step written with `gantry-sdk`.

use gantry_sdk::log::Annotation;
use gantry_sdk::{Context, Error, Result, Step};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Hello);

/// The step.
struct Hello;

impl Step for Hello {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let who: String = ctx.input_or("who", "world".to_owned())?;
        let greeting: String = ctx.input_or("greeting", "Hello".to_owned())?;
        let message = greet(&greeting, &who).map_err(|e| e.title("hello"))?;
        println!("{message}");
        Annotation::notice(format!("greeted {who}"))
            .title("hello")
            .emit();
        ctx.set_output("message", &message)?;
        ctx.export_env("GREETED", &who)?;
        ctx.append_summary(&format!("- {message}"))?;
        Ok(())
    }
}

/// The greeting, refusing a multi-line name.
fn greet(greeting: &str, who: &str) -> Result<String> {
    if who.contains(['\n', '\r']) {
        return Err(Error::new("`who` must be a single line"));
    }
    Ok(format!("{greeting}, {who}!"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;
    use std::fs;

    #[test]
    fn greets_with_defaults_and_inputs() {
        assert_eq!(greet("Hello", "world").unwrap(), "Hello, world!");
        assert!(greet("Hi", "a\nb").is_err());
    }

    #[test]
    fn writes_output_env_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        let ctx = Context::from_vars([
            ("INPUT_WHO", "gantry".to_owned()),
            ("GANTRY_OUTPUT", file("output")),
            ("GANTRY_ENV", file("env")),
            ("GANTRY_STEP_SUMMARY", file("summary")),
        ]);
        Hello.run(&ctx).unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("output"), "message=Hello, gantry!\n");
        assert_eq!(read("env"), "GREETED=gantry\n");
        assert_eq!(read("summary"), "- Hello, gantry!\n");
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "hello");
        assert!(
            meta.inputs.as_ref().unwrap().contains_key("who")
                && meta.outputs.contains_key("message")
        );
    }
}
