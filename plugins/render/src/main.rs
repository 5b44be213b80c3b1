//! `render`: fills a `{{ name }}` template from variables and writes the
//! result into an upload artifact or a workspace file. See README.md.

mod template;

use std::fs;
use std::path::{Path, PathBuf};

use gantry_sdk::{Context, Error, Result, ResultExt, Step, bail};
use sha2::{Digest, Sha256};

use template::{Escape, parse_vars, render};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Render);

/// The step.
struct Render;

impl Step for Render {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let template_path: Option<String> = ctx.input_opt("template")?;
        let inline: Option<String> = ctx.input_opt("text")?;
        let (source, shown) = match (&template_path, inline) {
            (Some(path), None) => {
                let file = ctx.workspace_path(path);
                let text = fs::read_to_string(&file)
                    .with_context(|| format!("cannot read template `{}`", file.display()))?;
                (text, path.clone())
            }
            (None, Some(text)) => (text, "text".to_owned()),
            (Some(_), Some(_)) => bail!("give either `template` or `text`, not both"),
            (None, None) => bail!("give a template: `template` (a file) or `text`"),
        };
        let vars = match ctx.raw_input("vars") {
            Some(text) => parse_vars(text).map_err(Error::new)?,
            None => Default::default(),
        };
        let escape = match ctx.input_or("escape", "none".to_owned())?.as_str() {
            "none" => Escape::None,
            "html" => Escape::Html,
            other => bail!("input `escape`: expected `none` or `html`, found `{other}`"),
        };
        let strict: bool = ctx.input_or("strict", true)?;

        let (text, missing) = render(&source, &vars, escape, strict).map_err(|e| {
            let error = Error::new(e.message).line(e.line).col(e.col);
            match &template_path {
                Some(path) => error.file(path),
                None => error,
            }
        })?;
        for name in &missing {
            gantry_sdk::log::warning(format!("`{name}` is not defined; left empty"));
        }

        let out = destination(
            ctx,
            ctx.input_opt("artifact")?,
            ctx.input_opt("out")?,
            template_path.as_deref(),
        )?;
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        fs::write(&out, &text).with_context(|| {
            format!(
                "cannot write `{}` (is it in a writable place: an upload artifact, or a workspace with `workspace: write`?)",
                out.display()
            )
        })?;

        let digest = hex(&Sha256::digest(text.as_bytes()));
        println!(
            "rendered {shown} → {} ({} bytes)",
            out.display(),
            text.len()
        );
        ctx.set_output("path", out.display().to_string())?;
        ctx.set_output("digest", &digest)?;
        ctx.set_output("bytes", text.len().to_string())?;
        Ok(())
    }
}

/// Where the result goes: `out` (or a name derived from the template),
/// inside the artifact folder if one is named, else in the workspace.
fn destination(
    ctx: &Context,
    artifact: Option<String>,
    out: Option<String>,
    template: Option<&str>,
) -> Result<PathBuf> {
    let name = match out {
        Some(out) => out,
        None => default_out(template),
    };
    match artifact {
        Some(artifact) => {
            if artifact.contains(['/', '\\']) || artifact == ".." || artifact == "." {
                bail!("input `artifact`: `{artifact}` is not an artifact name");
            }
            let relative = Path::new(&name);
            if relative.is_absolute()
                || relative
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                bail!("input `out`: `{name}` must stay inside the artifact folder");
            }
            Ok(ctx.artifact(&artifact).join(relative))
        }
        None => Ok(ctx.workspace_path(&name)),
    }
}

/// The template's file name without a template extension, or `index.html`.
fn default_out(template: Option<&str>) -> String {
    let Some(file) = template
        .and_then(|t| Path::new(t).file_name())
        .and_then(|f| f.to_str())
    else {
        return "index.html".to_owned();
    };
    for extension in [".tmpl", ".tpl", ".template"] {
        if let Some(stem) = file.strip_suffix(extension).filter(|s| !s.is_empty()) {
            return stem.to_owned();
        }
    }
    file.to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;

    fn context(dir: &Path, inputs: &[(&str, &str)]) -> Context {
        let path = |p: &str| dir.join(p).to_str().unwrap().to_owned();
        let mut vars = vec![
            ("GANTRY_WORKSPACE".to_owned(), path("ws")),
            ("GANTRY_ARTIFACTS".to_owned(), path("artifacts")),
            ("GANTRY_OUTPUT".to_owned(), path("output")),
        ];
        for (name, value) in inputs {
            vars.push((gantry_sdk::input::input_variable(name), value.to_string()));
        }
        fs::create_dir_all(dir.join("ws")).unwrap();
        Context::from_vars(vars)
    }

    #[test]
    fn renders_a_template_file_into_an_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(
            dir.path(),
            &[
                ("template", "site/index.html.tmpl"),
                ("vars", "title=Demo & co\nversion=1.0"),
                ("artifact", "site"),
                ("escape", "html"),
            ],
        );
        fs::create_dir_all(dir.path().join("ws/site")).unwrap();
        fs::write(
            dir.path().join("ws/site/index.html.tmpl"),
            "<h1>{{ title }}</h1> v{{version}}\n",
        )
        .unwrap();
        Render.run(&ctx).unwrap();
        let out = dir.path().join("artifacts/site/index.html");
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "<h1>Demo &amp; co</h1> v1.0\n"
        );
        let outputs = fs::read_to_string(dir.path().join("output")).unwrap();
        assert!(outputs.contains(&format!("path={}\n", out.display())));
        assert!(outputs.contains("bytes=28\n"), "{outputs}");
        let digest = hex(&Sha256::digest(b"<h1>Demo &amp; co</h1> v1.0\n"));
        assert!(outputs.contains(&format!("digest={digest}\n")));
    }

    #[test]
    fn inline_text_into_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(
            dir.path(),
            &[
                ("text", "tag: {{ tag }}"),
                ("vars", r#"{"tag": "v2"}"#),
                ("out", "out/tag.txt"),
            ],
        );
        Render.run(&ctx).unwrap();
        let text = fs::read_to_string(dir.path().join("ws/out/tag.txt")).unwrap();
        assert_eq!(text, "tag: v2");
    }

    #[test]
    fn undefined_variable_points_at_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), &[("template", "t.tmpl")]);
        fs::write(dir.path().join("ws/t.tmpl"), "\n  {{ who }}").unwrap();
        let error = Render.run(&ctx).unwrap_err();
        assert_eq!(
            error.annotation().to_string(),
            "::error file=t.tmpl,line=2,col=3::undefined variable `who` (no variables are defined)"
        );
    }

    #[test]
    fn artifact_paths_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), &[]);
        assert!(destination(&ctx, Some("../x".into()), None, None).is_err());
        assert!(destination(&ctx, Some("a".into()), Some("../../etc".into()), None).is_err());
        assert!(destination(&ctx, Some("a".into()), Some("/abs".into()), None).is_err());
    }

    #[test]
    fn default_output_names() {
        assert_eq!(default_out(Some("a/page.html.tmpl")), "page.html");
        assert_eq!(default_out(Some("conf.tpl")), "conf");
        assert_eq!(default_out(Some("readme.md")), "readme.md");
        assert_eq!(default_out(None), "index.html");
    }

    #[test]
    fn one_template_source() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Render.run(&context(dir.path(), &[])).is_err());
        let both = context(dir.path(), &[("template", "a"), ("text", "b")]);
        assert!(
            Render
                .run(&both)
                .unwrap_err()
                .message()
                .contains("not both")
        );
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "render");
        for input in [
            "template", "text", "vars", "out", "artifact", "escape", "strict",
        ] {
            assert!(meta.inputs.as_ref().unwrap().contains_key(input), "{input}");
        }
    }
}
