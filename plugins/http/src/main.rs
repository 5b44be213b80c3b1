//! `http`: sends one HTTP request, checks its status, and outputs the
//! status, a header, a JSON field and the sha256 of the body; its rollback
//! phase sends a compensating request (a `DELETE` of what was `PUT`), only
//! if the first one may have done something. See README.md.
//!
//! A WASI 0.2 component (`wasm32-wasip2`): the network is `wasi:http`,
//! reachable only at the destinations the step's `permissions.network`
//! grants. `request.rs` checks the inputs, `client.rs` retries and tracks
//! what the attempts may have done, `json.rs` picks `output-json`, and
//! `wasi.rs` moves the bytes; all but the last run in host tests.

mod client;
mod json;
mod request;
mod wasi;

use std::time::{Duration, Instant};

use gantry_sdk::log::{self, Annotation};
use gantry_sdk::{Context, Error, Outcome, Result, Step, bail};

use client::{Effect, Event, Exchange, Policy, Request, Transport};
use request::{Expect, Header, Url};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Http::new(wasi::WasiHttp));

/// What the rollback phase accepts by default: success, or the thing is
/// already gone, so running the compensation twice ends in the same place.
const ROLLBACK_EXPECT: &str = "2xx,404,410";

/// The most retries an input may ask for.
const MAX_RETRIES: u32 = 20;

/// The step, over a transport (`wasi:http` in the component, a scripted one
/// in tests).
struct Http<T> {
    transport: T,
}

impl<T: Transport> Http<T> {
    fn new(transport: T) -> Http<T> {
        Http { transport }
    }
}

impl<T: Transport> Step for Http<T> {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let plan = Plan::build(ctx, "", "GET", "2xx")?;
        // Checked now, so a compensation that could never be sent fails the
        // step before it changes anything, not the rollback after it did.
        let compensation = Plan::compensation(ctx)?;
        let output_header: Option<String> = ctx.input_opt("output-header")?;
        let output_json = ctx
            .input_opt::<String>("output-json")?
            .map(|path| json::Path::parse(&path))
            .transpose()
            .map_err(|e| Error::new(format!("input `output-json`: {e}")))?;
        let expect_sha256 = ctx
            .raw_input("expect-sha256")
            .map(parse_sha256)
            .transpose()?;
        let body = match (ctx.raw_input("body"), ctx.raw_input("body-file")) {
            (Some(_), Some(_)) => bail!("give `body` or `body-file`, not both"),
            (Some(text), None) => Some(Body::text(text)),
            (None, Some(path)) => Some(Body::file(ctx, path)?),
            (None, None) => None,
        };
        println!("{}", plan.describe(body.as_ref()));
        if let Some(compensation) = &compensation {
            println!(
                "compensation on rollback: {} {}",
                compensation.method, compensation.url
            );
        }
        let request = plan.request(body.map(|b| b.bytes));

        let started = Instant::now();
        let exchange = client::exchange(
            &mut self.transport,
            &request,
            &plan.policy,
            output_json.is_some(),
            |event| {
                report(event, plan.policy.retries);
                match event {
                    Event::Sending { effect, .. } | Event::Ended { effect, .. } => {
                        ctx.save_state("effect", effect.as_str())
                    }
                    Event::Waiting { .. } => Ok(()),
                }
            },
        )?;
        let elapsed = started.elapsed();
        ctx.set_output("attempts", exchange.attempts.to_string())?;
        let response = match &exchange.result {
            Ok(response) => response,
            Err(error) => bail!(
                "{} {}: {} ({}){}",
                plan.method,
                plan.url,
                error.message,
                attempts(exchange.attempts),
                unsure(&plan.method, exchange.effect)
            ),
        };
        ctx.save_state("status", response.status.to_string())?;
        ctx.set_output("status", response.status.to_string())?;
        ctx.set_output("sha256", &response.sha256)?;
        ctx.set_output("bytes", response.bytes.to_string())?;
        println!(
            "{} {} in {} ({}): {} bytes, sha256 {}",
            response.status,
            if exchange.accepted(&plan.policy.expect) {
                "accepted"
            } else {
                "not accepted"
            },
            millis(elapsed),
            attempts(exchange.attempts),
            response.bytes,
            response.sha256
        );
        check_status(&plan, &exchange)?;
        if let Some(expected) = &expect_sha256 {
            if *expected != response.sha256 {
                bail!(
                    "the response body's sha256 is {}, expected {expected} (input `expect-sha256`)",
                    response.sha256
                );
            }
            println!("the body's sha256 is the one expected");
        }

        if let Some(name) = &output_header {
            let Some(value) = response.header(name) else {
                bail!("the response has no `{name}` header (input `output-header`)");
            };
            ctx.set_output("header", value)?;
        }
        if let Some(path) = &output_json {
            let Some(body) = &response.body else {
                bail!(
                    "the response body ({} bytes) is too big to read as JSON (at most {} bytes)",
                    response.bytes,
                    wasi::KEEP_LIMIT
                );
            };
            let value = json::extract(body, path)
                .map_err(|e| Error::new(format!("input `output-json`: {e}")))?;
            ctx.set_output("json", value)?;
        }
        if ctx
            .var("GANTRY_STEP_SUMMARY")
            .is_some_and(|s| !s.is_empty())
        {
            ctx.append_summary(&format!(
                "`{} {}` answered {} ({}).",
                plan.method,
                plan.url,
                response.status,
                attempts(exchange.attempts)
            ))?;
        }
        Ok(())
    }

    fn rollback(&mut self, ctx: &Context) -> Result<()> {
        // Not "a later step failed": `gantry rollback` undoes runs that
        // succeeded too.
        let why = match ctx.outcome() {
            Some(Outcome::Failure) => "the step failed",
            Some(Outcome::Success) => "the step had succeeded",
            None => "rollback requested",
        };
        let Some(plan) = Plan::compensation(ctx)? else {
            println!(
                "nothing to undo ({why}): no compensating request is configured (`rollback-url`, `rollback-method`)"
            );
            return Ok(());
        };
        let status = ctx.state("status").filter(|s| !s.is_empty());
        match ctx.state("effect").map(Effect::parse) {
            None | Some(Effect::None) => {
                println!("nothing to undo ({why}): the request never reached the server");
                return Ok(());
            }
            Some(Effect::Refused) => {
                println!(
                    "nothing to undo ({why}): the server refused the request (status {})",
                    status.unwrap_or("unknown")
                );
                return Ok(());
            }
            Some(Effect::Unknown) => Annotation::warning(format!(
                "the request may or may not have reached the server (last status: {}); compensating to be safe",
                status.unwrap_or("none")
            ))
            .title("http")
            .emit(),
            Some(Effect::Done) => {}
        }
        let body = ctx.raw_input("rollback-body").map(Body::text);
        println!("compensating ({why}): {}", plan.describe(body.as_ref()));
        let request = plan.request(body.map(|b| b.bytes));
        let started = Instant::now();
        let exchange = client::exchange(
            &mut self.transport,
            &request,
            &plan.policy,
            false,
            |event| {
                report(event, plan.policy.retries);
                Ok::<(), Error>(())
            },
        )?;
        let response = match &exchange.result {
            Ok(response) => response,
            Err(error) => bail!(
                "compensation {} {}: {} ({})",
                plan.method,
                plan.url,
                error.message,
                attempts(exchange.attempts)
            ),
        };
        println!(
            "{} in {} ({})",
            response.status,
            millis(started.elapsed()),
            attempts(exchange.attempts)
        );
        check_status(&plan, &exchange).map_err(|e| e.context("compensation"))?;
        if ctx
            .var("GANTRY_STEP_SUMMARY")
            .is_some_and(|s| !s.is_empty())
        {
            ctx.append_summary(&format!(
                "Compensated with `{} {}`: {}.",
                plan.method, plan.url, response.status
            ))?;
        }
        Ok(())
    }
}

/// A request as the inputs describe it, and how to send it.
struct Plan {
    method: String,
    url: Url,
    headers: Vec<Header>,
    policy: Policy,
    timeout: Option<Duration>,
}

impl Plan {
    /// The request of the inputs whose names start with `prefix` (`""` or
    /// `"rollback-"`): `url` and `headers` fall back to the plain inputs,
    /// `method` and `expect` to the defaults given. Sensitive header values are registered as
    /// masks here, before anything is printed.
    fn build(ctx: &Context, prefix: &str, method: &str, expect: &str) -> Result<Plan> {
        let named = |name: &str| format!("{prefix}{name}");
        let text = |name: &str| -> Option<(String, &str)> {
            let own = named(name);
            match ctx.raw_input(&own) {
                Some(value) => Some((own, value)),
                None => ctx.raw_input(name).map(|value| (name.to_owned(), value)),
            }
        };
        let invalid = |input: &str, why: String| Error::new(format!("input `{input}`: {why}"));
        let Some((url_input, url)) = text("url") else {
            bail!("input `{}` is required but was not given", named("url"));
        };
        let url = Url::parse(url).map_err(|e| invalid(&url_input, e))?;
        let method = match ctx.raw_input(&named("method")) {
            Some(m) => request::parse_method(m).map_err(|e| invalid(&named("method"), e))?,
            None => method.to_owned(),
        };
        let headers = match text("headers") {
            Some((input, value)) => {
                request::parse_headers(value).map_err(|e| invalid(&input, e))?
            }
            None => Vec::new(),
        };
        for header in headers.iter().filter(|h| request::is_sensitive(&h.name)) {
            for value in request::mask_values(header) {
                // gantry refuses masks under 4 characters, with a warning.
                if value.chars().count() >= 4 {
                    log::add_mask(value);
                }
            }
        }
        let expect_input = named("expect");
        let expect = Expect::parse(ctx.raw_input(&expect_input).unwrap_or(expect))
            .map_err(|e| invalid(&expect_input, e))?;
        let retries: u32 = ctx.input_or("retries", 0)?;
        if retries > MAX_RETRIES {
            bail!("input `retries`: at most {MAX_RETRIES}, found {retries}");
        }
        let backoff: u64 = ctx.input_or("backoff-ms", 1000)?;
        let timeout = match ctx.input_opt::<u64>("timeout-ms")? {
            Some(0) => bail!("input `timeout-ms`: give at least 1 millisecond"),
            Some(ms) => Some(Duration::from_millis(ms)),
            None => None,
        };
        Ok(Plan {
            method,
            url,
            headers,
            policy: Policy {
                expect,
                retries,
                backoff: Duration::from_millis(backoff),
            },
            timeout,
        })
    }

    /// The compensating request, when one is configured: `rollback-url`
    /// (default `url`), `rollback-method` (default `DELETE`),
    /// `rollback-headers` (default `headers`), `rollback-expect` (default
    /// [`ROLLBACK_EXPECT`]).
    fn compensation(ctx: &Context) -> Result<Option<Plan>> {
        if ctx.raw_input("rollback-url").is_none() && ctx.raw_input("rollback-method").is_none() {
            if ctx.raw_input("rollback-body").is_some() {
                bail!(
                    "input `rollback-body` is given without `rollback-url` or `rollback-method`: say which request to send"
                );
            }
            return Ok(None);
        }
        Plan::build(ctx, "rollback-", "DELETE", ROLLBACK_EXPECT).map(Some)
    }

    fn request(&self, body: Option<Vec<u8>>) -> Request {
        Request {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body,
            timeout: self.timeout,
        }
    }

    /// One line saying what is sent: never a header's value.
    fn describe(&self, body: Option<&Body>) -> String {
        let mut line = format!("{} {}", self.method, self.url);
        if let Some(body) = body {
            line.push_str(&format!(", {} bytes from {}", body.bytes.len(), body.from));
        }
        if !self.headers.is_empty() {
            let names: Vec<&str> = self.headers.iter().map(|h| h.name.as_str()).collect();
            line.push_str(&format!(", headers {}", names.join(", ")));
        }
        line.push_str(&format!(", expecting {}", self.policy.expect));
        line
    }
}

/// A request body and where it came from, for the log.
struct Body {
    bytes: Vec<u8>,
    from: String,
}

impl Body {
    fn text(text: &str) -> Body {
        Body {
            bytes: text.as_bytes().to_vec(),
            from: "`body`".into(),
        }
    }

    /// The file `path`, relative to the workspace unless absolute (e.g. a
    /// downloaded artifact under `/artifacts/`).
    fn file(ctx: &Context, path: &str) -> Result<Body> {
        let full = ctx.workspace_path(path);
        let bytes = std::fs::read(&full).map_err(|e| {
            Error::new(format!(
                "input `body-file`: cannot read `{}`: {e} (is it under the workspace, or a downloaded artifact the step lists in `artifacts.download`?)",
                full.display()
            ))
        })?;
        Ok(Body {
            bytes,
            from: format!("`{}`", full.display()),
        })
    }
}

/// `expect-sha256`: 64 hex digits, in any case.
fn parse_sha256(text: &str) -> Result<String> {
    let digest = text.trim().to_ascii_lowercase();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("input `expect-sha256`: `{digest}` is not a sha256 (64 hex digits)");
    }
    Ok(digest)
}

/// Fails unless the last response's status is expected.
fn check_status(plan: &Plan, exchange: &Exchange) -> Result<()> {
    if exchange.accepted(&plan.policy.expect) {
        return Ok(());
    }
    let status = exchange.result.as_ref().map_or(0, |r| r.status);
    bail!(
        "{} {} answered {status}, expected {} ({}){}",
        plan.method,
        plan.url,
        plan.policy.expect,
        attempts(exchange.attempts),
        unsure(&plan.method, exchange.effect)
    )
}

/// What a failure message adds when the request may have taken effect
/// all the same, so the person reading it knows to look. Safe methods
/// change nothing by definition, so nothing is added for them.
fn unsure(method: &str, effect: Effect) -> &'static str {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return "";
    }
    match effect {
        Effect::Unknown => "; it may have reached the server all the same",
        Effect::Done => "; the server says it was done all the same",
        Effect::None | Effect::Refused => "",
    }
}

/// Logs one event of an exchange.
fn report(event: &Event, retries: u32) {
    match event {
        Event::Sending { attempt, .. } if *attempt > 1 => {
            println!("attempt {attempt} of {}", retries + 1);
        }
        Event::Ended {
            attempt,
            outcome: Err(why),
            ..
        } => println!("attempt {attempt}: {why}"),
        Event::Waiting { attempt, delay } => {
            Annotation::warning(format!(
                "attempt {attempt} failed; retrying in {}",
                millis(*delay)
            ))
            .title("http")
            .emit();
        }
        _ => {}
    }
}

fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

fn attempts(n: u32) -> String {
    format!("{n} attempt{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests;
