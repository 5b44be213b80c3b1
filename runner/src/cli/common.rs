//! What several commands share: finding, loading and resolving a manifest,
//! and reading its lock file, each failure printed with its exit status.

use std::path::{Path, PathBuf};

use super::print_error;
use crate::exit::Exit;
use crate::manifest;
use crate::plan::{self, Plan};
use crate::plugin::LockFile;

/// Loads and resolves the manifest at `path` (a file, a folder, or the
/// current folder's `gantry.yml`). Errors are printed; the `Err` is the
/// exit status.
pub fn load_plan(path: Option<&Path>) -> Result<Plan, Exit> {
    let file = manifest::locate(path);
    let loaded = manifest::load(&file).map_err(|error| {
        print_error(error);
        Exit::Invalid
    })?;
    plan::resolve(&loaded).map_err(|errors| {
        for error in errors.0 {
            print_error(error);
        }
        Exit::Invalid
    })
}

/// The path of the plan's lock file.
pub fn lock_path(plan: &Plan) -> PathBuf {
    LockFile::path_in(&plan.root)
}

/// Reads the plan's lock file; a broken one fails verification.
pub fn read_lock(plan: &Plan) -> Result<LockFile, Exit> {
    LockFile::read(&lock_path(plan)).map_err(|error| {
        print_error(error);
        Exit::Verification
    })
}

/// [`load_plan`] and [`read_lock`] together, as every command that checks
/// pins needs both.
pub fn load_plan_and_lock(path: Option<&Path>) -> Result<(Plan, LockFile), Exit> {
    let plan = load_plan(path)?;
    let lock = read_lock(&plan)?;
    Ok((plan, lock))
}
