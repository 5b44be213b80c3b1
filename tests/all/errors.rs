//! How a failing command prints its error: `error:`, one `Caused by:`
//! line per cause, `hint:`, coloured on a terminal only. The layout
//! itself is pinned by the snapshots in `cli_snapshots`.

use gantry_tests::Project;

use crate::fixture;
use crate::reports::drawn_on_a_terminal;

/// A project whose two plugins are not pinned: `gantry verify` fails with
/// an error and a hint for each.
pub(crate) fn two_unpinned() -> Project {
    let project = Project::new();
    project.wat_plugin("a.wasm", &fixture("hello.wat"));
    project.wat_plugin("b.wasm", &fixture("hello.wat"));
    project.manifest(
        "name: unpinned\nplugins:\n  a:\n    source: a.wasm\n  b:\n    source: b.wasm\njobs:\n  main:\n    steps:\n      - uses: a\n      - uses: b\n",
    );
    project
}

/// `gantry verify` of [`two_unpinned`] with stderr on a terminal.
fn verify_on_a_terminal(project: &Project, env: &[(&str, &str)]) -> (i32, String) {
    let mut command = project.command(&["verify"]);
    command.env_remove("CLICOLOR").env_remove("CLICOLOR_FORCE");
    command.envs(env.iter().copied());
    drawn_on_a_terminal(command, true)
}

#[test]
fn errors_are_coloured_on_a_terminal_only() {
    let project = two_unpinned();
    let (code, drawn) = verify_on_a_terminal(&project, &[]);
    assert_eq!(code, 3, "{drawn}");
    // Red and bold `error`, bold cyan `hint`, each reset after the word.
    assert!(
        drawn.contains("\x1b[1m\x1b[31merror\x1b[0m: plugin `a`"),
        "{drawn:?}"
    );
    assert!(
        drawn.contains("\x1b[1m\x1b[36mhint\x1b[0m: run `gantry lock`"),
        "{drawn:?}"
    );

    let (code, drawn) = verify_on_a_terminal(&project, &[("NO_COLOR", "1")]);
    assert_eq!(code, 3, "{drawn}");
    assert!(!drawn.contains('\x1b'), "{drawn:?}");
    assert!(drawn.contains("error: plugin `a`"), "{drawn:?}");

    // Piped: no escape code either.
    let piped = project.gantry(&["verify"]);
    piped.expect_code(3).stderr_has("error: plugin `b`");
    assert!(!piped.stderr.contains('\x1b'), "{:?}", piped.stderr);
}

#[test]
fn inside_github_actions_a_quoted_command_is_defused() {
    // A hostile pull request names a plugin source that reads as a
    // workflow command once quoted at the start of a line.
    let project = Project::new();
    project.manifest(
        "name: hostile\nplugins:\n  a:\n    source: \"x\\n::add-mask::leak.wasm\"\njobs:\n  main:\n    steps:\n      - uses: a\n",
    );
    let outcome = project.gantry_with_env(&["verify"], &[("GITHUB_ACTIONS", "true")]);
    outcome.expect_code(3);
    for line in outcome.stderr.lines() {
        assert!(!line.trim_start().starts_with("::"), "{:?}", outcome.stderr);
    }
    assert!(!outcome.stderr.contains('\x1b'), "{:?}", outcome.stderr);
}
