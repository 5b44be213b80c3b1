//! Sending one request with retries, independent of how bytes move: the
//! [`Transport`] trait (the `wasi:http` one lives in `wasi.rs`, tests use a
//! scripted one), the retry and backoff policy, and [`Effect`], what the
//! attempts may have done to the server, which the rollback phase reads.

use std::time::Duration;

use crate::request::{Expect, Header, Url};

/// The longest wait between two attempts, whatever the backoff or the
/// server's `Retry-After` say: a step should fail rather than sleep an
/// hour.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// One request, as the transport sends it. Only the `wasi:http`
/// transport reads it whole, so a host build (the tests' and clippy's)
/// sees fields unread.
#[cfg_attr(not(all(target_os = "wasi", target_env = "p2")), allow(dead_code))]
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: Url,
    pub headers: Vec<Header>,
    pub body: Option<Vec<u8>>,
    /// Connect, first-byte and between-bytes timeout; `None` leaves the
    /// host's.
    pub timeout: Option<Duration>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// sha256 of the body, lowercase hex.
    pub sha256: String,
    pub bytes: u64,
    /// The body itself, when it was asked to be kept.
    pub body: Option<Vec<u8>>,
}

impl Response {
    /// The first value of header `name` (any case), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    }

    /// `Retry-After` in seconds (its date form is not honoured: the
    /// exponential backoff applies then).
    fn retry_after(&self) -> Option<Duration> {
        let seconds = self.header("retry-after")?.trim().parse::<u64>().ok()?;
        Some(Duration::from_secs(seconds))
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// Whether trying again may help (a refused or dropped connection, a
    /// timeout), as opposed to a request that can never succeed (denied by
    /// the runner's grants, a bad header, a TLS certificate error).
    pub retryable: bool,
    /// Whether the request may have reached the server before it failed:
    /// `false` only when it certainly did not (denied, name not found,
    /// connection refused or never established).
    pub reached: bool,
}

/// Moves one request to the server and its response back.
pub trait Transport {
    /// Sends `request`; keeps the response body when `keep_body`.
    fn send(&mut self, request: &Request, keep_body: bool) -> Result<Response, SendError>;
    /// Waits before the next attempt.
    fn sleep(&mut self, duration: Duration);
}

/// What the attempts so far may have done on the server, ordered from
/// nothing to certainly something: the effect of several attempts is the
/// greatest of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Nothing was sent, or it certainly never reached the server.
    None,
    /// The server answered that it did not do it (1xx, 3xx, 4xx).
    Refused,
    /// It may have: no answer after sending, or a 5xx.
    Unknown,
    /// The server says it did (a 2xx, or an accepted status).
    Done,
}

impl Effect {
    /// The word kept in the step's state.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::None => "none",
            Effect::Refused => "refused",
            Effect::Unknown => "unknown",
            Effect::Done => "done",
        }
    }

    /// Reads the word back; anything else is unknown, to be safe.
    pub fn parse(text: &str) -> Effect {
        match text {
            "none" => Effect::None,
            "refused" => Effect::Refused,
            "done" => Effect::Done,
            _ => Effect::Unknown,
        }
    }

    /// The effect of an answer with `status`.
    pub fn of_status(status: u16, expect: &Expect) -> Effect {
        if expect.accepts(status) || (200..300).contains(&status) {
            Effect::Done
        } else if status >= 500 {
            Effect::Unknown
        } else {
            Effect::Refused
        }
    }
}

/// How often and how patiently to try.
#[derive(Debug, Clone)]
pub struct Policy {
    pub expect: Expect,
    /// Attempts after the first.
    pub retries: u32,
    /// The wait before the first retry; each further one doubles it.
    pub backoff: Duration,
}

impl Policy {
    /// The wait before retry `retry` (1 for the first): the backoff doubled
    /// each time, at least what the server asked with `Retry-After`, at
    /// most [`MAX_DELAY`].
    pub fn delay(&self, retry: u32, asked: Option<Duration>) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let backoff = self.backoff.saturating_mul(factor);
        backoff.max(asked.unwrap_or_default()).min(MAX_DELAY)
    }

    /// Whether an answer with `status` is worth another attempt: a server
    /// error or `429 Too Many Requests`, unless it is what was expected.
    pub fn retries_status(&self, status: u16) -> bool {
        !self.expect.accepts(status) && (status >= 500 || status == 429)
    }
}

/// What the exchange is doing, for the log and the step's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Attempt `attempt` is about to be sent; `effect` is what the
    /// attempts may have done if this one is cut short.
    Sending { attempt: u32, effect: Effect },
    /// An attempt ended; `effect` is the effect of all attempts so far.
    Ended {
        attempt: u32,
        outcome: Result<u16, String>,
        effect: Effect,
    },
    /// Waiting before attempt `attempt + 1`.
    Waiting { attempt: u32, delay: Duration },
}

/// How the exchange ended.
#[derive(Debug)]
pub struct Exchange {
    /// The last response, whatever its status, or why there was none.
    pub result: Result<Response, SendError>,
    pub attempts: u32,
    /// What all the attempts may have done.
    pub effect: Effect,
}

impl Exchange {
    /// Whether the last response has an expected status.
    pub fn accepted(&self, expect: &Expect) -> bool {
        matches!(&self.result, Ok(response) if expect.accepts(response.status))
    }
}

/// Sends `request` until a response is final or the retries are spent.
/// `event` hears each step first; an error from it (a state file that
/// cannot be written) stops the exchange before the next send.
pub fn exchange<T: Transport, E>(
    transport: &mut T,
    request: &Request,
    policy: &Policy,
    keep_body: bool,
    mut event: impl FnMut(&Event) -> Result<(), E>,
) -> Result<Exchange, E> {
    let mut effect = Effect::None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Written down before sending: if the step dies mid-request, its
        // rollback must assume the request may have arrived.
        event(&Event::Sending {
            attempt,
            effect: effect.max(Effect::Unknown),
        })?;
        let result = transport.send(request, keep_body);
        let (this, retry, asked) = match &result {
            Ok(response) => (
                Effect::of_status(response.status, &policy.expect),
                policy.retries_status(response.status),
                response.retry_after(),
            ),
            Err(error) => (
                if error.reached {
                    Effect::Unknown
                } else {
                    Effect::None
                },
                error.retryable,
                None,
            ),
        };
        effect = effect.max(this);
        event(&Event::Ended {
            attempt,
            outcome: result
                .as_ref()
                .map(|r| r.status)
                .map_err(|e| e.message.clone()),
            effect,
        })?;
        if !retry || attempt > policy.retries {
            return Ok(Exchange {
                result,
                attempts: attempt,
                effect,
            });
        }
        let delay = policy.delay(attempt, asked);
        event(&Event::Waiting { attempt, delay })?;
        transport.sleep(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport answering from a script, recording what it was asked.
    struct Scripted {
        answers: Vec<Result<Response, SendError>>,
        sent: usize,
        slept: Vec<Duration>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<Response, SendError>>) -> Scripted {
            Scripted {
                answers,
                sent: 0,
                slept: Vec::new(),
            }
        }
    }

    impl Transport for Scripted {
        fn send(&mut self, _: &Request, _: bool) -> Result<Response, SendError> {
            self.sent += 1;
            self.answers.remove(0)
        }
        fn sleep(&mut self, duration: Duration) {
            self.slept.push(duration);
        }
    }

    fn status(code: u16) -> Result<Response, SendError> {
        Ok(Response {
            status: code,
            headers: Vec::new(),
            sha256: String::new(),
            bytes: 0,
            body: None,
        })
    }

    fn error(retryable: bool, reached: bool) -> Result<Response, SendError> {
        Err(SendError {
            message: "connection refused".into(),
            retryable,
            reached,
        })
    }

    fn request() -> Request {
        Request {
            method: "PUT".into(),
            url: Url::parse("http://127.0.0.1:8080/x").unwrap(),
            headers: Vec::new(),
            body: Some(b"x".to_vec()),
            timeout: None,
        }
    }

    fn policy(expect: &str, retries: u32) -> Policy {
        Policy {
            expect: Expect::parse(expect).unwrap(),
            retries,
            backoff: Duration::from_millis(100),
        }
    }

    /// Runs the exchange and returns it with the events it reported.
    fn run(transport: &mut Scripted, policy: &Policy) -> (Exchange, Vec<Event>) {
        let mut events = Vec::new();
        let exchange = exchange(transport, &request(), policy, false, |e| {
            events.push(e.clone());
            Ok::<(), ()>(())
        })
        .unwrap();
        (exchange, events)
    }

    #[test]
    fn server_errors_and_connection_errors_are_retried_with_doubling_waits() {
        let mut transport = Scripted::new(vec![
            status(503),
            error(true, false),
            status(502),
            status(201),
        ]);
        let (exchange, events) = run(&mut transport, &policy("2xx", 5));
        assert_eq!(exchange.result.unwrap().status, 201);
        assert_eq!(exchange.attempts, 4);
        assert_eq!(exchange.effect, Effect::Done);
        assert_eq!(transport.slept, [100, 200, 400].map(Duration::from_millis));
        assert_eq!(
            events[0],
            Event::Sending {
                attempt: 1,
                effect: Effect::Unknown
            }
        );
        assert_eq!(
            events[1],
            Event::Ended {
                attempt: 1,
                outcome: Ok(503),
                effect: Effect::Unknown
            }
        );
    }

    #[test]
    fn retries_stop_when_spent_and_the_last_answer_stands() {
        let mut transport = Scripted::new(vec![status(503), status(503), status(503)]);
        let (exchange, _) = run(&mut transport, &policy("2xx", 2));
        assert_eq!(transport.sent, 3);
        assert_eq!(exchange.result.as_ref().unwrap().status, 503);
        assert!(!exchange.accepted(&Expect::parse("2xx").unwrap()));
        assert_eq!(exchange.effect, Effect::Unknown);
    }

    #[test]
    fn final_answers_and_permanent_errors_are_not_retried() {
        for (answer, effect) in [
            (status(404), Effect::Refused),
            (status(302), Effect::Refused),
            (error(false, false), Effect::None),
        ] {
            let mut transport = Scripted::new(vec![answer]);
            let (exchange, _) = run(&mut transport, &policy("2xx", 3));
            assert_eq!(transport.sent, 1);
            assert!(transport.slept.is_empty());
            assert_eq!(exchange.effect, effect);
        }
        // An expected 503 is an answer, not a failure to retry.
        let mut transport = Scripted::new(vec![status(503)]);
        let (exchange, _) = run(&mut transport, &policy("503", 3));
        assert_eq!(transport.sent, 1);
        assert!(exchange.accepted(&Expect::parse("503").unwrap()));
        assert_eq!(exchange.effect, Effect::Done);
    }

    #[test]
    fn the_effect_is_the_strongest_of_all_attempts() {
        // A 5xx may have done it; a 409 after it does not undo that.
        let mut transport = Scripted::new(vec![status(500), status(409)]);
        let (exchange, _) = run(&mut transport, &policy("2xx", 1));
        assert_eq!(exchange.effect, Effect::Unknown);
        // A connection dropped after sending may have done it too.
        let mut transport = Scripted::new(vec![error(true, true), error(true, false)]);
        let (exchange, _) = run(&mut transport, &policy("2xx", 1));
        assert_eq!(exchange.effect, Effect::Unknown);
        // An unexpected 2xx still did it.
        let mut transport = Scripted::new(vec![status(204)]);
        let (exchange, _) = run(&mut transport, &policy("201", 0));
        assert_eq!(exchange.effect, Effect::Done);
        assert!(!exchange.accepted(&Expect::parse("201").unwrap()));
    }

    #[test]
    fn delays_honour_retry_after_and_the_cap() {
        let policy = policy("2xx", 10);
        assert_eq!(policy.delay(1, None), Duration::from_millis(100));
        assert_eq!(policy.delay(4, None), Duration::from_millis(800));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(policy.delay(40, None), MAX_DELAY);
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3600))), MAX_DELAY);

        let mut busy = status(429);
        if let Ok(response) = &mut busy {
            response.headers.push(("retry-after".into(), b"2".to_vec()));
        }
        let mut transport = Scripted::new(vec![busy, status(200)]);
        let (exchange, _) = run(&mut transport, &policy);
        assert_eq!(exchange.attempts, 2);
        assert_eq!(transport.slept, [Duration::from_secs(2)]);
    }

    #[test]
    fn an_event_error_stops_before_the_next_send() {
        let mut transport = Scripted::new(vec![status(200)]);
        let result = exchange(&mut transport, &request(), &policy("2xx", 0), false, |_| {
            Err("disk full")
        });
        assert_eq!(result.unwrap_err(), "disk full");
        assert_eq!(transport.sent, 0);
    }

    #[test]
    fn effects_round_trip_through_state_and_unknown_words_are_unsafe() {
        for effect in [Effect::None, Effect::Refused, Effect::Unknown, Effect::Done] {
            assert_eq!(Effect::parse(effect.as_str()), effect);
        }
        assert_eq!(Effect::parse("garbled"), Effect::Unknown);
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let response = Response {
            status: 200,
            headers: vec![("etag".into(), b"\"abc\"".to_vec())],
            sha256: String::new(),
            bytes: 0,
            body: None,
        };
        assert_eq!(response.header("ETag").as_deref(), Some("\"abc\""));
        assert_eq!(response.header("Location"), None);
    }
}
