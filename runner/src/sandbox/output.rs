//! Capturing a step's stdout and stderr: split into lines, handed to a sink
//! as they arrive, and capped.
//!
//! The cap counts every byte a step writes to either stream. Past it the
//! write traps the guest, so a flood stops at once instead of filling the
//! runner's memory or disk.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Lines longer than this are handed on in pieces, each but the last
/// marked [`LineEnd::Continues`]; a piece ends on a UTF-8 character
/// boundary when the text allows it, so a character is never torn apart.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether a piece of output ends its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// The line ends here (with a line ending, or at the end of output).
    Complete,
    /// The line was longer than [`MAX_LINE_BYTES`]: the next piece from
    /// the same stream continues it. A reader that looks across lines (a
    /// masker, a command parser) must treat the two as one.
    Continues,
}

/// Receives each line a step writes, without its line ending, or each
/// piece of a line too long to hold (see [`LineEnd`]).
pub type LineSink = Arc<dyn Fn(Stream, &str, LineEnd) + Send + Sync>;

struct Shared {
    limit: usize,
    written: usize,
    flooded: bool,
    sink: LineSink,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Shared {
    fn partial(&mut self, stream: Stream) -> &mut Vec<u8> {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    fn accept(&mut self, stream: Stream, mut bytes: &[u8]) -> Result<(), StreamError> {
        if self.flooded {
            return Err(self.flood_error());
        }
        let room = self.limit - self.written;
        let over = bytes.len() > room;
        if over {
            bytes = &bytes[..room];
        }
        self.written += bytes.len();
        let sink = self.sink.clone();
        let partial = self.partial(stream);
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            partial.extend_from_slice(chunk);
            if partial.last() == Some(&b'\n') {
                emit(&sink, stream, partial, LineEnd::Complete);
            } else {
                // Strictly longer: the byte after the cut tells whether
                // the cut is between two characters.
                while partial.len() > MAX_LINE_BYTES {
                    let rest = partial.split_off(piece_end(partial));
                    emit(&sink, stream, partial, LineEnd::Continues);
                    *partial = rest;
                }
            }
        }
        if over {
            self.flooded = true;
            self.flush_partials();
            (self.sink)(stream, &cut_marker(self.limit), LineEnd::Complete);
            return Err(self.flood_error());
        }
        Ok(())
    }

    fn flush_partials(&mut self) {
        let sink = self.sink.clone();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let partial = self.partial(stream);
            if !partial.is_empty() {
                emit(&sink, stream, partial, LineEnd::Complete);
            }
        }
    }

    fn flood_error(&self) -> StreamError {
        StreamError::trap(&format!(
            "the step wrote more than its {}-byte output cap",
            self.limit
        ))
    }
}

/// The last line of a log that reached the output cap.
pub fn cut_marker(limit: usize) -> String {
    format!("[gantry] the log was cut here: the step printed more than its {limit}-byte output cap")
}

/// Where the first piece of an over-long line ends: at [`MAX_LINE_BYTES`],
/// or up to three bytes before it so a UTF-8 character is not cut in two.
fn piece_end(line: &[u8]) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (MAX_LINE_BYTES - 3..=MAX_LINE_BYTES)
        .rev()
        .find(|&at| !is_continuation(line[at]))
        .unwrap_or(MAX_LINE_BYTES)
}

/// Hands `line` (with any `\n` or `\r\n` ending removed) to the sink and
/// clears it.
fn emit(sink: &LineSink, stream: Stream, line: &mut Vec<u8>, end_of_line: LineEnd) {
    let mut end = line.len();
    if line[..end].ends_with(b"\n") {
        end -= 1;
        if line[..end].ends_with(b"\r") {
            end -= 1;
        }
    }
    sink(stream, &String::from_utf8_lossy(&line[..end]), end_of_line);
    line.clear();
}

/// The capture of one step's output streams.
#[derive(Clone)]
pub struct OutputCapture {
    shared: Arc<Mutex<Shared>>,
}

impl OutputCapture {
    pub fn new(limit: usize, sink: LineSink) -> Self {
        OutputCapture {
            shared: Arc::new(Mutex::new(Shared {
                limit,
                written: 0,
                flooded: false,
                sink,
                stdout: Vec::new(),
                stderr: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock only means a sink panicked; the byte counts are intact.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stream to give the guest as its stdout or stderr.
    pub fn stream(&self, stream: Stream) -> CaptureStream {
        CaptureStream {
            capture: self.clone(),
            stream,
        }
    }

    /// Hands on unterminated last lines; returns whether the cap was hit.
    pub fn finish(&self) -> bool {
        let mut shared = self.lock();
        shared.flush_partials();
        shared.flooded
    }
}

/// One of a step's output streams, as wasmtime-wasi sees it.
#[derive(Clone)]
pub struct CaptureStream {
    capture: OutputCapture,
    stream: Stream,
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.capture.lock().accept(self.stream, &bytes)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let shared = self.capture.lock();
        if shared.flooded {
            return Err(shared.flood_error());
        }
        // Offer a little more than is left, so the write that crosses the
        // cap is the one that reports it.
        Ok((shared.limit - shared.written + 1).min(MAX_LINE_BYTES))
    }
}

impl AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = self.capture.lock().accept(self.stream, buf);
        Poll::Ready(match result {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(std::io::Error::other("output cap exceeded")),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Recorded = Arc<Mutex<Vec<(Stream, String)>>>;

    fn recording(limit: usize) -> (OutputCapture, Recorded) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink_lines = lines.clone();
        let sink: LineSink = Arc::new(move |stream, line, _| {
            sink_lines.lock().unwrap().push((stream, line.to_owned()));
        });
        (OutputCapture::new(limit, sink), lines)
    }

    #[test]
    fn lines_are_reassembled_across_writes() {
        let (capture, lines) = recording(1024);
        let mut out = capture.stream(Stream::Stdout);
        let mut err = capture.stream(Stream::Stderr);
        out.write(Bytes::from_static(b"hel")).unwrap();
        err.write(Bytes::from_static(b"oops\r\n")).unwrap();
        out.write(Bytes::from_static(b"lo\nwor")).unwrap();
        assert!(!capture.finish());
        let lines = lines.lock().unwrap();
        assert_eq!(
            *lines,
            vec![
                (Stream::Stderr, "oops".to_owned()),
                (Stream::Stdout, "hello".to_owned()),
                (Stream::Stdout, "wor".to_owned()),
            ]
        );
    }

    #[test]
    fn the_cap_cuts_and_traps() {
        let (capture, lines) = recording(10);
        let mut out = capture.stream(Stream::Stdout);
        out.write(Bytes::from_static(b"12345\n")).unwrap();
        assert!(matches!(
            out.write(Bytes::from_static(b"6789\nabcdef\n")),
            Err(StreamError::Trap(_))
        ));
        assert!(matches!(
            out.write(Bytes::from_static(b"x")),
            Err(StreamError::Trap(_))
        ));
        assert!(capture.finish());
        let lines = lines.lock().unwrap();
        let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(texts, vec!["12345", "6789", &cut_marker(10)]);
    }

    #[test]
    fn the_cap_counts_both_streams_together() {
        let (capture, lines) = recording(10);
        let mut out = capture.stream(Stream::Stdout);
        let mut err = capture.stream(Stream::Stderr);
        out.write(Bytes::from_static(b"1234\n")).unwrap();
        // Five bytes on each stream fit; the sixth on stderr does not.
        assert!(matches!(
            err.write(Bytes::from_static(b"abcdef\n")),
            Err(StreamError::Trap(_))
        ));
        // Once cut, both streams stay shut.
        assert!(matches!(
            out.write(Bytes::from_static(b"x")),
            Err(StreamError::Trap(_))
        ));
        assert!(matches!(out.check_write(), Err(StreamError::Trap(_))));
        assert!(capture.finish());
        let lines = lines.lock().unwrap();
        assert_eq!(
            *lines,
            vec![
                (Stream::Stdout, "1234".to_owned()),
                (Stream::Stderr, "abcde".to_owned()),
                (Stream::Stderr, cut_marker(10)),
            ]
        );
    }

    #[test]
    fn very_long_lines_are_split() {
        let (capture, lines) = recording(1 << 20);
        let mut out = capture.stream(Stream::Stdout);
        out.write(Bytes::from(vec![b'a'; MAX_LINE_BYTES * 2 + 5]))
            .unwrap();
        capture.finish();
        let sizes: Vec<usize> = lines.lock().unwrap().iter().map(|(_, l)| l.len()).collect();
        assert_eq!(sizes, vec![MAX_LINE_BYTES, MAX_LINE_BYTES, 5]);
    }

    #[test]
    fn a_long_line_is_split_between_characters_and_says_it_continues() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink_lines = lines.clone();
        let sink: LineSink = Arc::new(move |_, line, end| {
            sink_lines.lock().unwrap().push((line.to_owned(), end));
        });
        let capture = OutputCapture::new(1 << 20, sink);
        let mut out = capture.stream(Stream::Stdout);
        // `é` is two bytes; the first straddles the 64 KiB boundary, and
        // the line arrives in writes as wasmtime cuts them.
        let mut text = "a".repeat(MAX_LINE_BYTES - 1).into_bytes();
        text.extend_from_slice("ééz\nnext\n".as_bytes());
        let (first, rest) = text.split_at(MAX_LINE_BYTES);
        let (second, third) = rest.split_at(4);
        for chunk in [first, second, third] {
            out.write(Bytes::copy_from_slice(chunk)).unwrap();
        }
        capture.finish();
        let lines = lines.lock().unwrap();
        let got: Vec<(usize, LineEnd)> = lines.iter().map(|(l, e)| (l.len(), *e)).collect();
        let want = vec![
            (MAX_LINE_BYTES - 1, LineEnd::Continues),
            (5, LineEnd::Complete),
            (4, LineEnd::Complete),
        ];
        assert_eq!(got, want);
        assert_eq!(lines[1].0, "ééz");
    }
}
