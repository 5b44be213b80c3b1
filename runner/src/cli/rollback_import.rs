//! `gantry rollback --import DIR…`: loads the pipeline, takes the state
//! folder, and hands the bundles to
//! [`engine::rollback::imported`](crate::engine::rollback::imported).

use std::path::PathBuf;

use super::Outcome;
use super::common::{read_draft, read_lock, runtime};
use super::compensate::CompensateArgs;
use crate::engine::rollback::imported::{self, ImportRequest, ImportSettled};
use crate::exit::Exit;

pub(super) fn compensate_imported(imports: &[PathBuf], args: &CompensateArgs) -> Outcome {
    let draft = read_draft(args.manifest.as_deref())?;
    let lock = read_lock(&draft.plan().root)?;
    let secrets = args.secrets.load()?;
    let state_dir = args.state.folder_of(&draft.plan().root)?;
    let protected = args.state.protect(&draft, &state_dir)?;
    let _lock = args.state.lock(&state_dir)?;
    let runtime = runtime()?;
    let request = ImportRequest {
        imports,
        draft,
        lock: &lock,
        state_dir: &state_dir,
        protected,
        hooks: args.hook_environment(&secrets, &runtime),
    };
    Ok(match imported::compensate_imported(request)? {
        ImportSettled::NothingImported | ImportSettled::RolledBack => Exit::Success,
        ImportSettled::HooksFailed => Exit::RollbackFailed,
    })
}
