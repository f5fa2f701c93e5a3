//! Where manifest files come from: the working tree, or a git revision
//! (the base of a pull request). Both give the same view: a list of files
//! under a root, and their text.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An error reading a manifest tree as a whole (not one file in it).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
}

/// A set of files under one root, addressed by `/`-separated paths
/// relative to that root.
pub trait Source {
    /// Every file under the root, sorted.
    fn files(&self) -> Result<Vec<String>, SourceError>;
    /// The text of one file.
    fn read(&self, relative: &str) -> Result<String, String>;
    /// How to name the file to users.
    fn display(&self, relative: &str) -> String;
}

/// Files on disk under `root`.
pub struct WorkTree {
    root: PathBuf,
}

impl WorkTree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        WorkTree { root: root.into() }
    }
}

impl Source for WorkTree {
    fn files(&self) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        walk(&self.root, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn read(&self, relative: &str) -> Result<String, String> {
        let path = self.root.join(relative);
        std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| "the file is not valid UTF-8".to_string())
            })
    }

    fn display(&self, relative: &str) -> String {
        join_display(&self.root.to_string_lossy(), relative)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SourceError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| SourceError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // .git, editor files: never manifests.
        }
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().map_err(|source| SourceError::Io {
            path: entry.path(),
            source,
        })?;
        if kind.is_dir() {
            walk(&entry.path(), &relative, out)?;
        } else {
            out.push(relative);
        }
    }
    Ok(())
}

fn join_display(root: &str, relative: &str) -> String {
    if relative.is_empty() {
        root.to_string()
    } else if root.is_empty() || root == "." {
        relative.to_string()
    } else {
        format!("{}/{relative}", root.trim_end_matches('/'))
    }
}

/// The files under `root` as they are at a git revision, read with the git
/// command line (two processes in all, whatever the number of files).
pub struct GitTree {
    revision: String,
    display_root: String,
    files: Vec<String>,
    contents: HashMap<String, Result<String, String>>,
}

impl GitTree {
    /// Reads every file under `root` (a path in the work tree of a git
    /// repository) at `revision`.
    pub fn load(revision: &str, root: &Path) -> Result<Self, SourceError> {
        let dir = directory_of(root);
        let (toplevel, in_repo) = locate(root, dir)?;
        verify_revision(&toplevel, revision)?;
        let full_paths = list_files(&toplevel, revision, &in_repo)?;
        let blobs = read_blobs(&toplevel, revision, &full_paths)?;
        let strip = if in_repo.is_empty() {
            String::new()
        } else {
            format!("{in_repo}/")
        };
        let mut files = Vec::with_capacity(full_paths.len());
        let mut contents = HashMap::with_capacity(full_paths.len());
        for (full, blob) in full_paths.iter().zip(blobs) {
            let relative = if full == &in_repo {
                // `root` is a file: keep its name.
                full.rsplit('/').next().unwrap_or(full).to_string()
            } else {
                full.strip_prefix(&strip).unwrap_or(full).to_string()
            };
            let text = blob.and_then(|b| {
                String::from_utf8(b).map_err(|_| "the file is not valid UTF-8".to_string())
            });
            files.push(relative.clone());
            contents.insert(relative, text);
        }
        files.sort();
        let display_root = if root.is_dir() { root } else { dir };
        Ok(GitTree {
            revision: revision.to_string(),
            display_root: display_root.to_string_lossy().into_owned(),
            files,
            contents,
        })
    }
}

/// The directory git runs in: `root` itself, or the one holding it.
fn directory_of(root: &Path) -> &Path {
    let dir = if root.is_dir() {
        root
    } else {
        root.parent().unwrap_or(Path::new("."))
    };
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// The repository's top level, and `root`'s `/`-separated path inside it
/// (empty for the top level itself).
fn locate(root: &Path, dir: &Path) -> Result<(PathBuf, String), SourceError> {
    let toplevel = git(dir, &["rev-parse", "--show-toplevel"], None)?;
    let toplevel = PathBuf::from(String::from_utf8_lossy(&toplevel).trim());
    let absolute = std::fs::canonicalize(root)
        .or_else(|_| {
            std::fs::canonicalize(dir).map(|d| d.join(root.file_name().unwrap_or_default()))
        })
        .map_err(|source| SourceError::Io {
            path: root.to_path_buf(),
            source,
        })?;
    let in_repo = absolute
        .strip_prefix(&toplevel)
        .map_err(|_| SourceError::Git {
            args: "rev-parse".into(),
            message: format!(
                "{} is not inside the repository {}",
                root.display(),
                toplevel.display()
            ),
        })?
        .to_string_lossy()
        .replace('\\', "/");
    Ok((toplevel, in_repo))
}

/// Fails, saying how to fetch it, when `revision` is not in the repository.
fn verify_revision(toplevel: &Path, revision: &str) -> Result<(), SourceError> {
    let spec = format!("{revision}^{{tree}}");
    git(toplevel, &["rev-parse", "--verify", "--quiet", &spec], None).map_err(|_| {
        SourceError::Git {
            args: format!("rev-parse {revision}"),
            message: format!(
                "revision `{revision}` not found; fetch it first (e.g. `git fetch origin {revision}`, or `actions/checkout` with `fetch-depth: 0`)"
            ),
        }
    })?;
    Ok(())
}

/// The full paths of the files under `in_repo` at `revision`.
fn list_files(toplevel: &Path, revision: &str, in_repo: &str) -> Result<Vec<String>, SourceError> {
    let pathspec = if in_repo.is_empty() { "." } else { in_repo };
    let listing = git(
        toplevel,
        &[
            "ls-tree",
            "-r",
            "-z",
            "--name-only",
            "--full-tree",
            revision,
            "--",
            pathspec,
        ],
        None,
    )?;
    Ok(listing
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect())
}

/// The bytes of each file at `revision`, in the order of `full_paths`, read
/// by one `git cat-file --batch`.
fn read_blobs(
    toplevel: &Path,
    revision: &str,
    full_paths: &[String],
) -> Result<Vec<Result<Vec<u8>, String>>, SourceError> {
    let batch_input: String = full_paths
        .iter()
        .map(|p| format!("{revision}:{p}\n"))
        .collect();
    let batch = git(
        toplevel,
        &["cat-file", "--batch"],
        Some(batch_input.as_bytes()),
    )?;
    Ok(split_batch(&batch))
}

impl Source for GitTree {
    fn files(&self) -> Result<Vec<String>, SourceError> {
        Ok(self.files.clone())
    }

    fn read(&self, relative: &str) -> Result<String, String> {
        self.contents
            .get(relative)
            .cloned()
            .unwrap_or_else(|| Err(format!("not present at {}", self.revision)))
    }

    fn display(&self, relative: &str) -> String {
        format!(
            "{}:{}",
            self.revision,
            join_display(&self.display_root, relative)
        )
    }
}

fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, SourceError> {
    let failed = |message: String| SourceError::Git {
        args: args.join(" "),
        message,
    };
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run git: {e}; is git installed?")))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Write on a thread: git may fill stdout before reading all input.
        let input = input.to_vec();
        std::thread::spawn(move || stdin.write_all(&input));
    }
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout)
            .map_err(|e| failed(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(stdout)
}

/// Splits `git cat-file --batch` output: `<oid> <type> <size>\n<bytes>\n`,
/// or `<name> missing\n`.
fn split_batch(mut data: &[u8]) -> Vec<Result<Vec<u8>, String>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(eol) = data.iter().position(|b| *b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&data[..eol]).into_owned();
        data = &data[eol + 1..];
        let size = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|_| !header.ends_with(" missing"));
        match size {
            Some(size) if data.len() > size => {
                out.push(Ok(data[..size].to_vec()));
                data = &data[size + 1..];
            }
            _ => out.push(Err(format!("git cannot read it ({header})"))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_is_split() {
        let data = b"abc blob 3\nxyz\nHEAD:nope missing\ndef blob 0\n\n";
        let parts = split_batch(data);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].as_deref(), Ok(&b"xyz"[..]));
        assert!(parts[1].is_err());
        assert_eq!(parts[2].as_deref(), Ok(&b""[..]));
    }

    #[test]
    fn display_paths() {
        assert_eq!(join_display(".", "a/b.yaml"), "a/b.yaml");
        assert_eq!(join_display("dir/", "a.yaml"), "dir/a.yaml");
    }
}
