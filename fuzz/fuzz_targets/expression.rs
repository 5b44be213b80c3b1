//! The `${{ }}` expression language: a bare expression and a template are
//! parsed, then evaluated against small fixed contexts (the shapes the
//! engine builds: `env`, `steps.<id>.outputs`, `matrix`, lists, objects).
//!
//! Properties: nothing panics, hangs or overflows the stack (the module's
//! length, depth and step limits hold); every error points inside the
//! text it came from; evaluating twice gives the same result.

#![no_main]

use std::sync::OnceLock;

use gantry::expr::{Contexts, Template, Value, parse_expression};
use libfuzzer_sys::fuzz_target;

fn contexts() -> &'static Contexts {
    static CONTEXTS: OnceLock<Contexts> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let json = serde_json::json!({
            "env": { "MAJOR": "1", "name": "gantry", "EMPTY": "" },
            "steps": {
                "build": { "outputs": { "tag": "v1.2.3", "count": "3" }, "outcome": "success" },
                "test": { "outputs": {}, "outcome": "failure" }
            },
            "matrix": { "os": "linux", "version": 2.5, "flag": true },
            "list": [1, "two", [3, 4], { "a": null }],
            "inputs": { "ref": "main" }
        });
        let mut contexts = Contexts::new();
        for (name, value) in json.as_object().expect("an object") {
            contexts.insert(name.clone(), Value::from_json(value).expect("a value"));
        }
        contexts
    })
}

fuzz_target!(|text: &str| {
    let ctx = contexts();
    // Bare expression, as in `if:`.
    match parse_expression(text) {
        Err(error) => assert!(error.offset <= text.len(), "{error:?} for {text:?}"),
        Ok(expression) => {
            let _ = expression.references();
            let _ = expression.calls("success");
            let first = expression.evaluate(ctx);
            if let Err(error) = &first {
                assert!(error.offset <= text.len(), "{error:?} for {text:?}");
            }
            // Evaluation is a function of the text and the contexts.
            assert_eq!(
                first.as_ref().map(Value::to_output_string),
                expression
                    .evaluate(ctx)
                    .as_ref()
                    .map(Value::to_output_string)
            );
        }
    }
    // The same text as a template, as in `run:` or `with:` values.
    match Template::parse(text) {
        Err(error) => assert!(error.offset <= text.len(), "{error:?} for {text:?}"),
        Ok(template) => {
            assert_eq!(template.source(), text);
            let _ = template.references();
            match template.render(ctx) {
                Err(error) => assert!(error.offset <= text.len(), "{error:?} for {text:?}"),
                Ok(rendered) => {
                    // Text without `${{` renders as itself.
                    if template.is_literal() {
                        assert_eq!(rendered, text);
                    }
                }
            }
        }
    }
});
