//! A job's `strategy:`: its matrix expanded into combinations as GitHub
//! Actions documents it (product, `exclude`, `include`), `fail-fast` and
//! `max-parallel`. The expansion is a pure function of the YAML model, so
//! it is tested here without a manifest.

use indexmap::IndexMap;

use super::{MatrixCombination, Resolver};
use crate::expr::Value;
use crate::manifest::model;

/// The most combinations one matrix may expand to, as in GitHub Actions.
pub const MAX_MATRIX_COMBINATIONS: usize = 256;

impl Resolver<'_> {
    pub(super) fn strategy(
        &mut self,
        strategy: Option<&model::Strategy>,
    ) -> (Vec<MatrixCombination>, bool, Option<usize>) {
        let Some(strategy) = strategy else {
            return (Vec::new(), true, None);
        };
        let matrix = match &strategy.matrix {
            None => Vec::new(),
            Some(matrix) => match expand_matrix(&matrix.value) {
                Ok(combinations) => combinations,
                Err(message) => {
                    self.error(matrix.referenced, message);
                    Vec::new()
                }
            },
        };
        let max_parallel = match &strategy.max_parallel {
            Some(n) if n.value == 0 => {
                self.error(n.referenced, "`max-parallel` must be at least 1");
                None
            }
            Some(n) => Some(n.value as usize),
            None => None,
        };
        let fail_fast = strategy.fail_fast.as_ref().is_none_or(|f| f.value);
        (matrix, fail_fast, max_parallel)
    }
}

/// Expands `strategy.matrix` as GitHub Actions does: the product of the
/// named lists, minus every combination an `exclude` entry matches, then
/// each `include` entry merged into every combination whose original
/// values it agrees with, or added as a combination of its own.
pub fn expand_matrix(matrix: &model::Matrix) -> Result<Vec<MatrixCombination>, String> {
    let convert = |json: &serde_json::Value, key: &str| {
        Value::from_json(json)
            .ok_or_else(|| format!("matrix value of `{key}` is not a usable value"))
    };
    let mut combinations: Vec<MatrixCombination> = vec![IndexMap::new()];
    for (key, values) in &matrix.axes {
        if values.is_empty() {
            return Err(format!("matrix key `{key}` has an empty list"));
        }
        let mut next = Vec::with_capacity(combinations.len() * values.len());
        for combination in &combinations {
            for value in values {
                let mut extended = combination.clone();
                extended.insert(key.clone(), convert(value, key)?);
                next.push(extended);
            }
            if next.len() > MAX_MATRIX_COMBINATIONS {
                return Err(format!(
                    "the matrix expands to more than {MAX_MATRIX_COMBINATIONS} combinations"
                ));
            }
        }
        combinations = next;
    }
    if matrix.axes.is_empty() {
        combinations.clear();
    }
    for exclude in &matrix.exclude {
        let pattern = to_values(exclude, convert)?;
        combinations.retain(|combination| {
            !pattern
                .iter()
                .all(|(key, value)| combination.get(key) == Some(value))
        });
    }
    let original_keys: Vec<&String> = matrix.axes.keys().collect();
    let originals = combinations.len();
    for include in &matrix.include {
        let entry = to_values(include, convert)?;
        let mut matched = false;
        for combination in combinations.iter_mut().take(originals) {
            let agrees = entry.iter().all(|(key, value)| {
                !original_keys.contains(&key) || combination.get(key) == Some(value)
            });
            if agrees {
                matched = true;
                for (key, value) in &entry {
                    combination.insert(key.clone(), value.clone());
                }
            }
        }
        if !matched {
            combinations.push(entry);
        }
    }
    if combinations.len() > MAX_MATRIX_COMBINATIONS {
        return Err(format!(
            "the matrix expands to more than {MAX_MATRIX_COMBINATIONS} combinations"
        ));
    }
    if combinations.is_empty() {
        return Err("the matrix has no combinations left after `exclude`".into());
    }
    Ok(combinations)
}

fn to_values(
    entry: &IndexMap<String, serde_json::Value>,
    convert: impl Fn(&serde_json::Value, &str) -> Result<Value, String>,
) -> Result<MatrixCombination, String> {
    entry
        .iter()
        .map(|(key, value)| Ok((key.clone(), convert(value, key)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(yaml: &str) -> Result<Vec<String>, String> {
        let matrix: model::Matrix = serde_saphyr::from_str(yaml).unwrap();
        expand_matrix(&matrix).map(|combinations| {
            combinations
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|(k, v)| format!("{k}={}", v.to_output_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect()
        })
    }

    #[test]
    fn matrix_product_in_key_order() {
        assert_eq!(
            matrix("os: [linux, mac]\nv: [1, 2]\n").unwrap(),
            ["os=linux,v=1", "os=linux,v=2", "os=mac,v=1", "os=mac,v=2"]
        );
    }

    #[test]
    fn matrix_include_and_exclude_as_github_documents() {
        // GitHub's documented example: `include` entries extend matching
        // combinations, may not overwrite original values, and otherwise
        // become combinations of their own.
        let yaml = "fruit: [apple, pear]\nanimal: [cat, dog]\ninclude:\n  - color: green\n  - color: pink\n    animal: cat\n  - fruit: apple\n    shape: circle\n  - fruit: banana\n  - fruit: banana\n    animal: cat\n";
        assert_eq!(
            matrix(yaml).unwrap(),
            [
                "fruit=apple,animal=cat,color=pink,shape=circle",
                "fruit=apple,animal=dog,color=green,shape=circle",
                "fruit=pear,animal=cat,color=pink",
                "fruit=pear,animal=dog,color=green",
                "fruit=banana",
                "fruit=banana,animal=cat",
            ]
        );
        let yaml = "os: [linux, mac]\nv: [1, 2]\nexclude:\n  - os: mac\n    v: 1\n";
        assert_eq!(
            matrix(yaml).unwrap(),
            ["os=linux,v=1", "os=linux,v=2", "os=mac,v=2"]
        );
        assert_eq!(
            matrix("include:\n  - { a: 1 }\n  - { a: 2 }\n").unwrap(),
            ["a=1", "a=2"]
        );
    }

    #[test]
    fn matrix_limits() {
        let big = "a: [1,2,3,4,5,6,7,8,9,10]\nb: [1,2,3,4,5,6,7,8,9,10]\nc: [1,2,3]\n";
        assert!(matrix(big).unwrap_err().contains("more than 256"));
        assert!(matrix("a: []\n").unwrap_err().contains("empty list"));
        assert!(
            matrix("a: [1]\nexclude:\n  - a: 1\n")
                .unwrap_err()
                .contains("no combinations")
        );
    }
}
