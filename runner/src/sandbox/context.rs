//! The WASI context of one step: exactly what its invocation grants — its
//! environment, its own `/tmp` and step files, the workspace and granted
//! folders (opened without following links a step could have planted, and
//! never writable over gantry's own files) — and a cap on what it may hold
//! open.

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder, WasiView};

use super::admission::StepModule;
use super::output::{OutputCapture, Stream};
use super::step_files::{self, StepFolder};
use super::{Failure, Sandbox, StepInvocation, root_cause};
use crate::fsutil;
use crate::state::relation;

/// Resource-table entries a step has besides its mounted folders and the
/// files it opens: its three standard streams (measured on wasmtime-wasi
/// 48's preview 1 adapter; the file-limit test pins it). A folder being
/// listed counts as an open file while it is.
const TABLE_OVERHEAD: usize = 3;

/// The same for a component, whose table also holds its streams, pollables
/// and HTTP requests and responses while it uses them: a generous margin,
/// so the limit still counts files and not the plumbing of WASI 0.2.
pub(super) const COMPONENT_TABLE_OVERHEAD: usize = 64;

impl Sandbox {
    /// The WASI context of one step: only what the invocation grants.
    pub(super) fn build_wasi(
        &self,
        invocation: &StepInvocation<'_>,
        module: &StepModule,
        folder: Option<&StepFolder>,
        capture: &OutputCapture,
    ) -> Result<(WasiCtxBuilder, usize), Failure> {
        let mut builder = WasiCtxBuilder::new();
        // File operations run inline on this thread instead of hopping to a
        // blocking pool; must be set before the folders are opened. The
        // same switch makes wasmtime-wasi serve a plain relative sleep with
        // `std::thread::sleep`, which no timeout can interrupt, so a module
        // that can sleep keeps the (slower, interruptible) thread hop.
        builder.allow_blocking_current_thread(!module.can_sleep);
        builder.stdout(capture.stream(Stream::Stdout));
        builder.stderr(capture.stream(Stream::Stderr));
        builder.args(&[invocation.program]);
        for (name, value) in &invocation.env {
            builder.env(name, value);
        }
        for (name, value) in StepFolder::guest_env() {
            builder.env(name, value);
        }
        let granted = invocation.dirs.iter().chain(&invocation.extra_dirs);
        // A missing grant is a mistake in the manifest, said whether or not
        // this module could have used the folder.
        if let Some(dir) = granted.clone().find(|dir| !dir.host.is_dir()) {
            return Err(Failure::Setup(format!(
                "the folder `{}` granted at `{}` does not exist",
                dir.host.display(),
                dir.guest
            )));
        }
        let Some(folder) = folder else {
            return Ok((builder, 0));
        };
        // The step's own folders: made by gantry, never a grant.
        let own = |builder: &mut WasiCtxBuilder, host: &std::path::Path, guest: &str| {
            builder
                .preopened_dir(host, guest, FsPerms::ReadWrite)
                .map(|_| ())
                .map_err(|e| cannot_open(host, guest, &root_cause(&e)))
        };
        own(&mut builder, &folder.scratch(), "/tmp")?;
        own(&mut builder, &folder.files(), step_files::GUEST_FILES_DIR)?;
        let mut mounts = 2;
        if let Some(workspace) = &invocation.workspace {
            self.mount(
                &mut builder,
                &workspace.host,
                "/workspace",
                workspace.writable,
            )?;
            mounts += 1;
        }
        for dir in granted {
            self.mount(&mut builder, &dir.host, &dir.guest, dir.writable)?;
            mounts += 1;
        }
        Ok((builder, mounts))
    }

    /// Mounts a granted host folder at `guest`. Below the manifest's
    /// folder no symlink is followed on the way (a step may have replaced
    /// a folder by a link to anywhere), and a writable mount of a folder
    /// holding gantry's own files is refused. The folder is opened once
    /// and mounted through its descriptor, so a link planted between the
    /// check and the mount changes nothing.
    fn mount(
        &self,
        builder: &mut WasiCtxBuilder,
        host: &std::path::Path,
        guest: &str,
        writable: bool,
    ) -> Result<(), Failure> {
        let below_project = self
            .project
            .as_deref()
            .and_then(|project| host.strip_prefix(project).ok().map(|rel| (project, rel)));
        let opened = match below_project {
            Some((project, relative)) => fsutil::open_dir_beneath(project, relative),
            None => fsutil::open_dir(host),
        }
        .map_err(|e| cannot_open(host, guest, &e.to_string()))?;
        if writable {
            let real =
                fsutil::real_path(&opened).map_err(|e| cannot_open(host, guest, &e.to_string()))?;
            if let Some(overlap) = self.protected.overlap(&real) {
                return Err(Failure::Setup(format!(
                    "refused to mount `{}` writable at `{guest}`: it {} gantry's {} `{}`, which no step may write",
                    overlap.grant.display(),
                    relation(&overlap),
                    overlap.what,
                    overlap.protected.display()
                )));
            }
        }
        let perms = if writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(fsutil::fd_path(&opened), guest, perms)
            .map(|_| ())
            .map_err(|e| cannot_open(host, guest, &root_cause(&e)))
    }
}

/// Caps the guest's resource table: every file it opens is a host
/// descriptor held there, so the cap bounds what one step can take from
/// the host (and from the steps beside it). `mounts` folders were
/// preopened.
pub(super) fn with_file_limit(mut wasi: WasiP1Ctx, mounts: usize, max_files: u32) -> WasiP1Ctx {
    wasi.ctx()
        .table
        .set_max_capacity(mounts + TABLE_OVERHEAD + max_files as usize);
    wasi
}

fn cannot_open(host: &std::path::Path, guest: &str, why: &str) -> Failure {
    Failure::Setup(format!(
        "cannot open `{}` for `{guest}`: {why}",
        host.display()
    ))
}
