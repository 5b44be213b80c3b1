//! `gantry rollback --import DIR…`: loads the pipeline, takes the state
//! folder, and hands the bundles to
//! [`engine::rollback::imported`](crate::engine::rollback::imported).

use std::path::PathBuf;

use super::common::{read_draft, read_lock, refuse, runtime};
use super::compensate::{CompensateArgs, refuse_compensation};
use super::print_error;
use crate::engine::rollback::imported::{self, ImportError, ImportRequest, ImportSettled};
use crate::exit::Exit;

pub(super) fn compensate_imported(
    imports: &[PathBuf],
    args: &CompensateArgs,
) -> Result<Exit, Exit> {
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
    match imported::compensate_imported(request) {
        Ok(ImportSettled::NothingImported | ImportSettled::RolledBack) => Ok(Exit::Success),
        Ok(ImportSettled::HooksFailed) => Ok(Exit::RollbackFailed),
        Err(ImportError::Load(error)) => Err(refuse(error)),
        Err(ImportError::Bundles(message)) => {
            print_error(message);
            Err(Exit::Invalid)
        }
        Err(ImportError::Compensate(error)) => Err(refuse_compensation(error)),
    }
}
