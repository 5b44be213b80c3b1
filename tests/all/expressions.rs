//! The expression language as a user meets it through `gantry validate`,
//! `plan` and `run`: the places where it must agree with GitHub's runner
//! (issue 18, point 1). The rules themselves are unit-tested in
//! `runner/src/expr/`; these pin that they reach the command line.

use gantry_tests::{Outcome, probe_project};

/// One probe step printing `text` (a YAML double-quoted scalar's content).
fn print(text: &str) -> String {
    format!("      - uses: probe\n        with: {{ action: print, text: \"{text}\" }}\n")
}

fn run_printing(text: &str) -> Outcome {
    probe_project(&print(text)).gantry(&["run"])
}

#[test]
fn comparisons_fold_case_as_github_does() {
    // The dotless `ı` is not `I`: .NET's invariant upper-casing keeps it.
    run_printing(
        "fold ${{ 'ı' == 'I' }} ${{ 'i' == 'I' }} ${{ startsWith('ırmak', 'I') }} \
         ${{ contains('KAPI', 'ı') }} ${{ 'ı' > 'Z' }} ${{ 'é' == 'É' }}",
    )
    .expect_code(0)
    .stdout_has("fold false true false false true true");
}

#[test]
fn object_keys_keep_the_order_they_were_written_in() {
    let outcome = run_printing(
        "star ${{ join(fromJSON('{\\\"zeta\\\": \\\"1\\\", \\\"alpha\\\": \\\"2\\\", \\\"mid\\\": \\\"3\\\"}').*, '-') }} \
         json ${{ toJSON(fromJSON('{\\\"zeta\\\": 1, \\\"alpha\\\": 2}')) }}",
    );
    outcome.expect_code(0).stdout_has("star 1-2-3 json");
    let zeta = outcome.stdout.find("\"zeta\": 1").expect("zeta in toJSON");
    let alpha = outcome
        .stdout
        .find("\"alpha\": 2")
        .expect("alpha in toJSON");
    assert!(zeta < alpha, "toJSON sorted the keys:\n{}", outcome.stdout);
}

/// Every command that reads the manifest refuses it, with exit 2 and the
/// place of the fault, before anything runs.
fn refused_everywhere(steps: &str, location: &str, message: &str) {
    let project = probe_project(steps);
    for command in ["validate", "plan", "run"] {
        project
            .gantry(&[command])
            .expect_code(2)
            .stderr_has(&format!(
                "gantry.yml:{location}: in an expression: {message}"
            ))
            .stdout_lacks("never-printed");
    }
}

#[test]
fn an_unknown_function_is_refused_even_where_it_would_never_run() {
    refused_everywhere(
        "      - uses: probe\n        if: false && nonExistentFunction()\n        with: { action: print, text: never-printed }\n",
        "10:22",
        "unknown function `nonExistentFunction`; the functions are: always, cancelled, case, contains",
    );
    // The engine's own functions are known wherever an expression is.
    probe_project(&print(
        "${{ always() && hashFiles('gantry.yml') != '' }} ${{ success() }}",
    ))
    .gantry(&["validate"])
    .expect_code(0);
}

#[test]
fn a_wrong_argument_count_is_refused_before_the_run() {
    refused_everywhere(
        &format!(
            "{}      - uses: probe\n        if: \"true || contains('a')\"\n        with: {{ action: print, text: never-printed }}\n",
            print("first")
        ),
        "12:22",
        "function `contains` takes 2 argument(s), got 1",
    );
    refused_everywhere(
        "      - uses: probe\n        if: success(1)\n        with: { action: print, text: never-printed }\n",
        "10:13",
        "function `success` takes 0 argument(s), got 1",
    );
}

#[test]
fn expressions_deeper_than_github_allows_are_refused() {
    // 49 property steps over a context: 50 levels, GitHub's limit.
    let at_limit = format!("${{{{ env{} }}}}", ".a".repeat(49));
    probe_project(&print(&at_limit))
        .gantry(&["validate"])
        .expect_code(0);
    let too_deep = format!(
        "      - uses: probe\n        with: {{ action: print, text: \"${{{{ env{} }}}} never-printed\" }}\n",
        ".a".repeat(50)
    );
    refused_everywhere(
        &too_deep,
        "10:43",
        "expression is nested too deeply (GitHub's limit is 50 levels",
    );
}

#[test]
fn an_empty_expression_is_an_empty_value() {
    run_printing("empty [${{ }}] [${{}}]")
        .expect_code(0)
        .stdout_has("empty [] []");
}

#[test]
fn strings_past_githubs_memory_budget_fail_instead_of_growing() {
    // Each `format` quadruples 64 characters: 7 levels make 1,048,576
    // characters (2 MiB by GitHub's measure), 5 levels fit.
    let nested = |levels: usize| {
        (0..levels).fold(format!("'{}'", "x".repeat(64)), |inner, _| {
            format!("format('{{0}}{{0}}{{0}}{{0}}', {inner})")
        })
    };
    let fits = format!("${{{{ startsWith({}, 'xx') }}}} fits", nested(5));
    run_printing(&fits).expect_code(0).stdout_has("true fits");
    let outcome = run_printing(&format!("${{{{ {} }}}}", nested(7)));
    outcome.expect_code(1);
    let all = format!("{}{}", outcome.stdout, outcome.stderr);
    assert!(
        all.contains("`format` would need more than the 1 MiB of memory an expression may use"),
        "{all}"
    );
}

#[test]
fn case_picks_the_first_true_predicate() {
    run_printing(
        "case ${{ case('a' == 'b', 'one', 'x' == 'X', 'two', 'three') }} \
         ${{ case(false, 'one', 'three') }} ${{ case(true, 'lazy', fromJSON('not json')) }}",
    )
    .expect_code(0)
    .stdout_has("case two three lazy");
    // Predicates must be booleans, as in GitHub; a truthy string is not.
    let outcome = run_printing("${{ case('yes', 'a', 'b') }}");
    outcome.expect_code(1);
    let all = format!("{}{}", outcome.stdout, outcome.stderr);
    assert!(
        all.contains("a `case` predicate must be a boolean, got a string"),
        "{all}"
    );
    // An even count has no default: refused before the run.
    refused_everywhere(
        "      - uses: probe\n        if: case(true, true, false, false)\n        with: { action: print, text: never-printed }\n",
        "10:13",
        "function `case` takes an odd number of arguments",
    );
}
