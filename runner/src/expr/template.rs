//! Strings with embedded `${{ expr }}` pieces.

use super::eval::{Evaluator, FunctionHost};
use super::{Contexts, ExprError, Expression, FunctionSpec, Res, push_unique};

/// A string with zero or more `${{ expr }}` pieces, parsed once and rendered
/// any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// The text it was parsed from, so a value can be rendered again later
    /// (a rollback hook's secret inputs) without keeping the value itself.
    source: String,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Expr(Expression),
}

impl Template {
    /// Parses `text`, whose expressions may call the built-in functions
    /// only. Error offsets are byte offsets into `text` itself.
    pub fn parse(text: &str) -> Result<Template, ExprError> {
        Self::parse_with(text, &[])
    }

    /// Parses `text`, whose expressions may also call `functions`.
    pub fn parse_with(text: &str, functions: &[FunctionSpec]) -> Result<Template, ExprError> {
        let mut parts = Vec::new();
        let mut from = 0;
        let slice = |a: usize, b: usize| text.get(a..b).unwrap_or_default();
        while let Some(open) = slice(from, text.len()).find("${{").map(|i| from + i) {
            if open > from {
                parts.push(Part::Text(slice(from, open).to_owned()));
            }
            let inner_start = open + 3;
            let close = find_close(text, inner_start)
                .ok_or_else(|| ExprError::new("unclosed `${{`", open))?;
            let inner = slice(inner_start, close);
            // `${{ }}` is an empty value in GitHub (its parser returns no
            // tree, and no tree evaluates to null), not an error.
            let expression = if inner.trim().is_empty() {
                Expression::empty(inner_start)
            } else {
                Expression::parse_at(inner, inner_start, functions)?
            };
            parts.push(Part::Expr(expression));
            from = close + 2;
        }
        if from < text.len() {
            parts.push(Part::Text(slice(from, text.len()).to_owned()));
        }
        Ok(Template {
            parts,
            source: text.to_owned(),
        })
    }

    /// A template that renders to `text` as it is, never scanned for `${{`.
    pub fn literal(text: impl Into<String>) -> Template {
        let text = text.into();
        Template {
            parts: vec![Part::Text(text.clone())],
            source: text,
        }
    }

    /// The text this template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the text holds no `${{ }}` at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The expression when the whole text is exactly one `${{ }}`, so callers
    /// can keep its typed value (an object, a number) instead of a string.
    pub fn as_single_expression(&self) -> Option<&Expression> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }

    /// Renders with the built-in functions only.
    pub fn render(&self, ctx: &Contexts) -> Result<String, ExprError> {
        self.render_inner(ctx, None)
    }

    /// Renders, asking `host` for functions that are not built in.
    pub fn render_with(
        &self,
        ctx: &Contexts,
        host: &dyn FunctionHost,
    ) -> Result<String, ExprError> {
        self.render_inner(ctx, Some(host))
    }

    fn render_inner(&self, ctx: &Contexts, host: Option<&dyn FunctionHost>) -> Res<String> {
        // One evaluator, so all pieces share a single cost budget. The result
        // is plain data and is never scanned for `${{` again.
        let mut ev = Evaluator::new(ctx, host);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => {
                    let v = ev.eval(e.root())?;
                    out.push_str(&ev.output_string(&v, e.root().span.start)?);
                }
            }
        }
        Ok(out)
    }

    /// Context paths read by all pieces, without duplicates; see
    /// [`Expression::references`].
    pub fn references(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Expr(e) = part {
                for r in e.references() {
                    push_unique(&mut out, r);
                }
            }
        }
        out
    }
}

/// Finds the `}}` that ends an expression starting at `from`, skipping any
/// inside single-quoted strings (`''` just toggles twice). Byte scanning is
/// safe: `'` and `}` never occur inside a multi-byte UTF-8 sequence.
fn find_close(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Value;
    use super::super::tests::{CTX, check};
    use super::*;

    fn render(text: &str) -> Res<Value> {
        Template::parse(text)?.render(&CTX).map(Value::String)
    }

    #[test]
    fn renders_pieces_and_text() {
        let table = r#"
            v${{ env.MAJOR }}.${{ steps.build.outputs.minor }} => "v2.7"
            plain text, no braces {{ }} => "plain text, no braces {{ }}"
            ${{ 1 == 1 }}/${{ null }}/${{ 3.0 }}/${{ 0.5 }} => "true//3/0.5"
            ${{ '}}' }}! => "}}!"
            ${{ 'a''}}''b' }} => "a'}}'b"
            ${{ format('{{0}}') }} => "{0}"
            ${{ matrix.list }}/${{ github.event }} => "Array/Object"
            ${{ toJSON(matrix.list) }} => "[\n  1,\n  \"two\",\n  null\n]"
            ${{ false }}|${{ true }}|${{ null }}|${{ 1.0 }}|${{ 1e15 }}|${{ -2.99e-2 }} => "false|true||1|1E+15|-0.0299"
            ${{ 0xff }} and ${{ 'It''s' }} => "255 and It's"
            ${{ env.MAJOR }}} => "2}"
            [${{ env.TRAP }}] => "[${{ env.MAJOR }}]"
            ${{ '${{ env.MAJOR }}' }} => "${{ env.MAJOR }}"
            abc ${{ env.X => !4: unclosed `${{`
            ${{ a }} and ${{ 'x }} => !13: unclosed `${{`
            ab ${{   }}|${{}} => "ab |"
            x${{ a }} ${{ a == }} => !19: unexpected end of expression
            x${{ a }} ${{ a # }} => !16: unexpected character `#`
            ok ${{ env.MAJOR }} ${{ nope.x }} => !24: unknown context `nope`; available: big, env, fruits, github, job, matrix, steps, vegetables
            é ${{ format('{9}') }} => !7: format: placeholder `{9}` has no argument (0 given)
        "#;
        // The `TRAP` lines: values that look like templates stay literal.
        check(table, render);
    }

    #[test]
    fn shape_and_references() {
        let t = |text: &str| Template::parse(text).expect(text);
        assert!(t("no exprs").is_literal() && t("").is_literal());
        let raw = Template::literal("${{ env.MAJOR }}");
        assert!(raw.is_literal() && raw.render(&CTX).is_ok_and(|s| s == "${{ env.MAJOR }}"));
        assert!(!t("${{ a }}").is_literal() && t("${{ a }}").as_single_expression().is_some());
        assert!(t("x${{ a }}").as_single_expression().is_none());
        let refs = t("${{ steps.b.outputs.x }}-${{ env.A || steps.b.outputs.x }}").references();
        assert_eq!(
            refs.iter().map(|p| p.join(".")).collect::<Vec<_>>(),
            ["steps.b.outputs.x", "env.A"]
        );
    }
}
