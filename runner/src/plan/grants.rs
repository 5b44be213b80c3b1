//! What a step may touch: its `permissions:` resolved into [`Grants`],
//! and the path rules behind them and behind plugin sources: a path
//! written in the manifest stays inside the manifest's folder (no `..` out,
//! nothing absolute, no symlink out), and a mount never shadows a folder
//! gantry mounts itself. The security rules of the plan, in one room so a
//! reviewer reads them together.

use std::path::{Component, Path, PathBuf};

use super::{DirMount, Grants, Resolver, WorkspaceAccess};
use crate::manifest::model::{self, Access};
use crate::network::NetworkGrant;

/// Guest paths that gantry itself mounts.
const RESERVED_GUEST_PATHS: [&str; 4] = ["/workspace", "/tmp", "/artifacts", "/gantry"];

/// The manifest's word, as the plan's own type.
impl From<model::WorkspaceAccess> for WorkspaceAccess {
    fn from(access: model::WorkspaceAccess) -> Self {
        match access {
            model::WorkspaceAccess::None => WorkspaceAccess::None,
            model::WorkspaceAccess::Read => WorkspaceAccess::Read,
            model::WorkspaceAccess::Write => WorkspaceAccess::Write,
        }
    }
}

impl Resolver<'_> {
    pub(super) fn grants(&mut self, permissions: &model::Permissions) -> Grants {
        let mut dirs: Vec<DirMount> = Vec::new();
        for grant in &permissions.dirs {
            let guest = grant.guest.value.trim_end_matches('/').to_owned();
            let guest_path = Path::new(&guest);
            let reserved = RESERVED_GUEST_PATHS
                .iter()
                .find(|r| guest_path.starts_with(r) || Path::new(r).starts_with(guest_path));
            if !guest.starts_with('/')
                || normalize_within(guest_path.strip_prefix("/").unwrap_or(guest_path)).is_none()
            {
                self.error(
                    grant.guest.referenced,
                    format!(
                        "the guest path `{}` must be absolute, without `..`",
                        grant.guest.value
                    ),
                );
            } else if guest == "/" {
                self.error(grant.guest.referenced, "a folder cannot be mounted at `/`");
            } else if let Some(reserved) = reserved {
                self.error(
                    grant.guest.referenced,
                    format!(
                        "the guest path `{guest}` overlaps `{reserved}`, which gantry mounts itself"
                    ),
                );
            } else if dirs.iter().any(|d| d.guest == guest) {
                self.error(
                    grant.guest.referenced,
                    format!("`{guest}` is mounted twice"),
                );
            }
            // `..` resolved here, lexically, so a folder inside the project
            // is recognised as such and opened without following links.
            let host = crate::state::normalize(&self.loaded.root.join(&grant.host.value));
            dirs.push(DirMount {
                host,
                guest,
                writable: grant.access == Access::Write,
            });
        }
        let mut host_env = Vec::new();
        for name in &permissions.env {
            if name.value.is_empty() || name.value.contains(['=', '\0']) {
                self.error(
                    name.referenced,
                    format!("invalid environment variable name `{}`", name.value),
                );
            } else {
                host_env.push(name.value.clone());
            }
        }
        let mut network: Vec<NetworkGrant> = Vec::new();
        for destination in &permissions.network {
            match NetworkGrant::parse(&destination.value) {
                Ok(grant) if network.contains(&grant) => {
                    self.error(
                        destination.referenced,
                        format!("`{}` is granted twice", destination.value),
                    );
                }
                Ok(grant) => network.push(grant),
                Err(why) => {
                    self.error(destination.referenced, why);
                }
            }
        }
        Grants {
            workspace: permissions
                .workspace
                .as_ref()
                .map_or(WorkspaceAccess::Read, |w| w.value.into()),
            dirs,
            host_env,
            network,
        }
    }
}

/// `written`, a path relative to the manifest's folder `root`, as an
/// absolute path under it; `None` when it is empty, absolute, climbs out, or
/// (through a symlink) lands outside the tree.
pub(super) fn within_root(root: &Path, written: &str) -> Option<PathBuf> {
    let relative = Path::new(written);
    if written.is_empty() || relative.is_absolute() {
        return None;
    }
    let path = root.join(normalize_within(relative)?);
    // A symlink inside the tree may still point out of it.
    if let Ok(real) = path.canonicalize()
        && !real.starts_with(root)
    {
        return None;
    }
    Some(path)
}

/// Normalises a relative path lexically, or `None` if it climbs out of its
/// starting folder.
fn normalize_within(path: &Path) -> Option<PathBuf> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_may_not_climb_out() {
        assert_eq!(
            normalize_within(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(normalize_within(Path::new("a/../../b")), None);
        assert_eq!(normalize_within(Path::new("/etc")), None);
    }
}
