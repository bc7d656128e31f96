//! A small filesystem of a test's own, to fill to the last byte: a tmpfs of a
//! few MiB on a fresh folder (mounting needs root).

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::Command;

/// ENOSPC, as a write to a full filesystem fails.
const NO_SPACE: i32 = 28;

/// A tmpfs of a few MiB mounted on a fresh folder; unmounted (lazily: a process
/// may still hold a file on it) and removed on drop, also after a failure.
pub struct SmallDisk {
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(name: &str) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("small-disk-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
        let disk = SmallDisk { dir };
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&disk.dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(mounted.success(), "cannot mount a tmpfs on {} (this test runs as root)", disk.dir.display());
        disk
    }

    /// Writes a filler file until the filesystem has no byte left; returns it.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut filler =
            File::create(&path).unwrap_or_else(|e| panic!("cannot make {}: {e}", path.display()));
        let chunk = vec![b'x'; 64 * 1024];
        loop {
            match filler.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(NO_SPACE) => return path,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("cannot fill {}: {e}", self.dir.display()),
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}
