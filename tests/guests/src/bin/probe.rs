//! A step that does what its `action` input says, so one guest can exercise
//! every channel of the step ABI and every limit of the sandbox.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;

fn input(name: &str) -> String {
    std::env::var(format!("INPUT_{}", name.to_uppercase())).unwrap_or_default()
}

fn append(variable: &str, text: &str) {
    let path = std::env::var(variable).expect("the ABI names this file");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open ABI file");
    file.write_all(text.as_bytes()).expect("write ABI file");
}

fn main() {
    match input("action").as_str() {
        // Outputs, exported env, state and summary, as the ABI describes.
        "echo" => {
            let message = input("message");
            println!("message: {message}");
            append("GANTRY_OUTPUT", &format!("message={message}\n"));
            append(
                "GANTRY_OUTPUT",
                "lines<<END_OF_VALUE\nfirst\nsecond\nEND_OF_VALUE\n",
            );
            append("GANTRY_ENV", &format!("EXPORTED_MESSAGE={message}\n"));
            append("GANTRY_STATE", "saved=state-value\n");
            append(
                "GANTRY_STEP_SUMMARY",
                &format!("### probe says {message}\n"),
            );
        }
        // Every variable the step can see, one per line, sorted.
        "env" => {
            let vars: BTreeMap<String, String> = std::env::vars().collect();
            for (name, value) in vars {
                println!("{name}={value}");
            }
        }
        "read" => match fs::read_to_string(input("path")) {
            Ok(text) => {
                println!("read ok: {}", text.trim_end());
                append("GANTRY_OUTPUT", &format!("text={}\n", text.trim_end()));
            }
            Err(e) => println!("read failed: {e}"),
        },
        "write" => match fs::write(input("path"), input("content")) {
            Ok(()) => println!("write ok"),
            Err(e) => println!("write failed: {e}"),
        },
        "list" => match fs::read_dir(input("path")) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                println!("list ok: {}", names.join(","));
            }
            Err(e) => println!("list failed: {e}"),
        },
        // Opens `path` `count` times, holding every handle.
        "open" => {
            let count: usize = input("count").parse().unwrap_or(1);
            let mut held = Vec::new();
            for _ in 0..count {
                match fs::File::open(input("path")) {
                    Ok(file) => held.push(file),
                    Err(e) => {
                        println!("open failed after {}: {e}", held.len());
                        std::process::exit(1);
                    }
                }
            }
            println!("opened {}", held.len());
        }
        "alloc" => {
            let megabytes: usize = input("megabytes").parse().unwrap_or(1024);
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            for _ in 0..megabytes {
                blocks.push(vec![1u8; 1024 * 1024]);
            }
            println!("allocated {} MiB", blocks.len());
        }
        "recurse" => {
            #[allow(unconditional_recursion)] // overflowing the stack is the point
            fn deeper(n: u64) -> u64 {
                let pad = [n; 64];
                std::hint::black_box(&pad);
                deeper(n + 1) + pad[0]
            }
            println!("{}", deeper(0));
        }
        "spin" => loop {
            std::hint::black_box(0);
        },
        "sleep" => {
            let seconds: f64 = input("seconds").parse().unwrap_or(3600.0);
            std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
            println!("woke up");
        }
        // Fails until it has been run `succeed-on` times, counting in a file.
        "flaky" => {
            let path = input("path");
            let runs: u32 = fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0)
                + 1;
            fs::write(&path, runs.to_string()).expect("write the counter");
            // Leaves a trace of each attempt, to see what a retry starts with.
            let marks = input("marks");
            if !marks.is_empty() {
                fs::write(format!("{marks}/attempt-{runs}"), "").expect("write the mark");
            }
            let succeed_on: u32 = input("succeed_on").parse().unwrap_or(1);
            if runs < succeed_on {
                println!("run {runs}: failing");
                std::process::exit(1);
            }
            println!("run {runs}: succeeding");
        }
        // Prints `text` a few bytes per write, to test masking across writes.
        "pieces" => {
            let text = format!("pieces: {}\n", input("text"));
            let mut out = std::io::stdout().lock();
            for chunk in text.as_bytes().chunks(2) {
                out.write_all(chunk).expect("write");
                out.flush().expect("flush");
            }
        }
        "flood" => {
            let line = "x".repeat(1000);
            let mut out = std::io::stdout().lock();
            loop {
                if writeln!(out, "{line}").is_err() {
                    // Keep trying: a hostile guest does not give up.
                    continue;
                }
            }
        }
        // A step with a rollback hook: in either phase it appends what it
        // saw to the file `log`, then fails or sleeps if asked to in that
        // phase (`fail`/`sleep` for run, `fail_rollback`/`sleep_rollback`).
        "record" => {
            let phase = std::env::var("GANTRY_PHASE").unwrap_or_default();
            let label = input("label");
            let line = if phase == "rollback" {
                append("GANTRY_STEP_SUMMARY", &format!("- rolled back {label}\n"));
                format!(
                    "rollback {label} outcome={} state={}\n",
                    std::env::var("GANTRY_STEP_OUTCOME").unwrap_or_default(),
                    std::env::var("STATE_mark").unwrap_or_default()
                )
            } else {
                append("GANTRY_STATE", &format!("mark=saved-by-{label}\n"));
                format!("run {label}\n")
            };
            let mut log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(input("log"))
                .expect("open the record log");
            log.write_all(line.as_bytes())
                .expect("write the record log");
            println!("{}", line.trim_end());
            let suffix = if phase == "rollback" { "_rollback" } else { "" };
            if let Ok(seconds) = input(&format!("sleep{suffix}")).parse::<f64>() {
                std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
            }
            if input(&format!("fail{suffix}")) == "true" {
                println!("::error::{label} fails in phase {phase}");
                std::process::exit(1);
            }
        }
        // Leaves a marker named `me` in `dir`, then waits up to `wait`
        // seconds for the marker of `peer`: succeeds only when both steps
        // run at the same time, whatever the machine's speed.
        "meet" => {
            let dir = std::path::PathBuf::from(input("dir"));
            fs::write(dir.join(input("me")), "here").expect("write the marker");
            let wait: f64 = input("wait").parse().unwrap_or(30.0);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(wait);
            while !dir.join(input("peer")).exists() {
                if std::time::Instant::now() > deadline {
                    println!("alone: {} never came", input("peer"));
                    std::process::exit(1);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            println!("met {}", input("peer"));
        }
        // Appends `content` to the ABI file named by the variable `file`
        // (`GANTRY_ENV`, say), each `<NUL>` written as a NUL byte.
        "append" => append(&input("file"), &input("content").replace("<NUL>", "\0")),
        // Registers `count` masks `value-N`, then prints two of them.
        "mask-flood" => {
            let count: usize = input("count").parse().unwrap_or(1);
            let mut out = std::io::stdout().lock();
            for n in 0..count {
                writeln!(out, "::add-mask::value-{n:06}").expect("print");
            }
            writeln!(out, "first: value-000001, late: value-{:06}", count - 1).expect("print");
        }
        // Writes `kib` KiB to the file `path`, 64 KiB at a time, then
        // sleeps `then_sleep` seconds if given.
        "fill" => {
            let kib: usize = input("kib").parse().unwrap_or(1);
            let mut file = fs::File::create(input("path")).expect("create the file to fill");
            let chunk = vec![b'f'; 64 * 1024];
            let mut written = 0;
            while written < kib {
                if let Err(e) = file.write_all(&chunk) {
                    println!("fill failed after {written} KiB: {e}");
                    std::process::exit(1);
                }
                written += 64;
            }
            println!("filled {written} KiB");
            drop(file);
            if let Ok(seconds) = input("then_sleep").parse::<f64>() {
                std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
            }
        }
        // A summary of `kib` KiB of `x` lines.
        "big-summary" => {
            let kib: usize = input("kib").parse().unwrap_or(1);
            let line = format!("{}\n", "x".repeat(1023));
            append("GANTRY_STEP_SUMMARY", &line.repeat(kib));
        }
        "exit" => std::process::exit(input("code").parse().unwrap_or(1)),
        "panic" => panic!("the probe was asked to panic"),
        "stderr" => eprintln!("to stderr: {}", input("message")),
        // Print the given text verbatim: workflow commands in tests; then,
        // if asked, work for `sleep` seconds and exit with `code`.
        "print" => {
            for line in input("text").split('|') {
                println!("{line}");
            }
            std::io::stdout().flush().expect("flush stdout");
            if let Ok(seconds) = input("sleep").parse::<f64>() {
                std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
            }
            if let Ok(code) = input("code").parse() {
                std::process::exit(code);
            }
        }
        other => {
            println!("::error title=probe::unknown action `{other}`");
            std::process::exit(2);
        }
    }
}
