//! Dev mode: with no secret configured, a random one is generated once and kept beside the
//! database, so tokens printed at start keep working across restarts.

use std::io;
use std::path::{Path, PathBuf};

use rand::RngCore;

pub const DEV_SECRET_FILE: &str = "crm-dev-secret";

pub fn secret_path(dir: &Path) -> PathBuf {
    dir.join(DEV_SECRET_FILE)
}

/// The dev secret kept in `dir`, if there is one. A file that cannot be read, or holds too
/// short a secret, is an error naming it: replacing it would strand every token it signed.
pub fn load_secret(dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let path = secret_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => Ok(Some(text.trim().as_bytes().to_vec())),
        Ok(text) => Err(io::Error::other(format!(
            "the dev secret at {} has {} bytes, at least 32 are needed; delete the file to \
             have a new one made",
            path.display(),
            text.trim().len()
        ))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io::Error::new(
            err.kind(),
            format!("cannot read the dev secret at {}: {err}", path.display()),
        )),
    }
}

pub fn load_or_create_secret(dir: &Path) -> io::Result<Vec<u8>> {
    let path = secret_path(dir);
    if let Some(secret) = load_secret(dir)? {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    std::fs::create_dir_all(dir)?;
    write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    std::fs::write(path, contents)
}
