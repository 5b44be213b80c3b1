//! The environment variable a `with:` key reaches a step as.

/// `INPUT_` and the name upper-cased, with `-` and spaces turned into `_`.
///
/// ```
/// use gantry_abi::inputs::input_variable;
/// assert_eq!(input_variable("image-tag"), "INPUT_IMAGE_TAG");
/// assert_eq!(input_variable("two words"), "INPUT_TWO_WORDS");
/// ```
pub fn input_variable(name: &str) -> String {
    let mut variable = String::from("INPUT_");
    for c in name.chars() {
        match c {
            '-' | ' ' => variable.push('_'),
            c => variable.extend(c.to_uppercase()),
        }
    }
    variable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_abi() {
        assert_eq!(input_variable("name"), "INPUT_NAME");
        assert_eq!(input_variable("Mixed Case-x"), "INPUT_MIXED_CASE_X");
        assert_eq!(input_variable("dry-run"), input_variable("dry_run"));
    }
}
