//! The landing zone: where provider files arrive. A local directory or any object store
//! (`s3://…` with the usual `AWS_*` variables, `file:///…`), listed by prefix.

use crate::error::IngestError;
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt};
use std::io::{Read, Seek};
use std::sync::Arc;

/// A store plus the prefix inside it that this landing zone covers.
#[derive(Clone)]
pub struct Landing {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: StorePath,
    /// How the operator named it, for messages.
    pub location: String,
    /// The directory a local store's paths are relative to: listed by walking it, so that a
    /// name no object path can hold is skipped instead of ending the listing.
    local_root: Option<std::path::PathBuf>,
}

/// What a listing found: the provider files, and the names it had to leave out, each with
/// the reason.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<LandingFile>,
    pub unlistable: Vec<String>,
}

/// One file found in a landing zone.
#[derive(Debug, Clone)]
pub struct LandingFile {
    pub path: StorePath,
    pub size: u64,
}

impl Landing {
    /// Opens a local path (file or directory) or an object-store URL.
    pub fn open(location: &str) -> Result<Landing, IngestError> {
        let landing_error = |reason: String| IngestError::Landing {
            location: location.to_owned(),
            reason,
        };
        if location.contains("://") {
            let url = url::Url::parse(location).map_err(|e| landing_error(e.to_string()))?;
            let (store, prefix): (Arc<dyn ObjectStore>, StorePath) = match url.scheme() {
                "s3" | "s3a" => {
                    let store = object_store::aws::AmazonS3Builder::from_env()
                        .with_url(location)
                        .build()
                        .map_err(|e| landing_error(e.to_string()))?;
                    let prefix = StorePath::from_url_path(url.path())
                        .map_err(|e| landing_error(e.to_string()))?;
                    (Arc::new(store), prefix)
                }
                _ => {
                    let (store, prefix) =
                        object_store::parse_url(&url).map_err(|e| landing_error(e.to_string()))?;
                    (Arc::from(store), prefix)
                }
            };
            // `file://` URLs name paths from the file system's root.
            let local_root = (url.scheme() == "file").then(|| std::path::PathBuf::from("/"));
            return Ok(Landing {
                store,
                prefix,
                location: location.to_owned(),
                local_root,
            });
        }
        let path = std::path::Path::new(location);
        let absolute = std::path::absolute(path).map_err(|e| landing_error(e.to_string()))?;
        let (root, prefix) = if absolute.is_file() {
            let parent = absolute.parent().unwrap_or(&absolute).to_path_buf();
            let name = absolute
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (parent, StorePath::from(name))
        } else {
            std::fs::create_dir_all(&absolute).map_err(|e| landing_error(e.to_string()))?;
            (absolute, StorePath::default())
        };
        let store = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| landing_error(e.to_string()))?;
        Ok(Landing {
            store: Arc::new(store),
            prefix,
            location: location.to_owned(),
            local_root: Some(root),
        })
    }

    /// Every provider file under the prefix (`.csv`, `.csv.gz`), sorted by path, skipping
    /// hidden files and the generator's `_truth/` sidecar. A name no object path can hold (a
    /// newline or another control character, invalid UTF-8) is left out with the reason, and
    /// the rest are listed: one such name must not stop the whole landing zone.
    pub async fn list(&self) -> Result<Listing, IngestError> {
        // A prefix that names one object lists just that object.
        if !self.prefix.as_ref().is_empty() {
            if let Ok(meta) = self.store.head(&self.prefix).await {
                return Ok(Listing {
                    files: vec![LandingFile {
                        path: meta.location,
                        size: meta.size,
                    }],
                    unlistable: Vec::new(),
                });
            }
        }
        let mut listing = match &self.local_root {
            Some(root) => {
                let (root, prefix) = (root.clone(), self.prefix.clone());
                tokio::task::spawn_blocking(move || list_local(&root, &prefix))
                    .await
                    .map_err(|e| IngestError::Landing {
                        location: self.location.clone(),
                        reason: e.to_string(),
                    })?
            }
            None => self.list_store().await,
        };
        listing
            .files
            .retain(|file| is_provider_file(file.path.as_ref()));
        listing
            .files
            .sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        Ok(listing)
    }

    /// Lists through the object store, leaving out the objects it cannot describe.
    async fn list_store(&self) -> Listing {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let mut objects = self.store.list(prefix);
        let mut listing = Listing::default();
        while let Some(meta) = objects.next().await {
            match meta {
                Ok(meta) => listing.files.push(LandingFile {
                    path: meta.location,
                    size: meta.size,
                }),
                Err(error) => listing.unlistable.push(error.to_string()),
            }
        }
        listing
    }

    /// A blocking reader over the object's bytes, for the CSV parser's blocking thread. A
    /// local file is read directly: object_store would hand it over in 8 KiB chunks, each
    /// read by a blocking task of its own and passed through a channel (15,000 thread
    /// hand-offs for a 123 MB file, twice: hash and parse). Other stores stream through a
    /// channel fed by a task, memory bounded by its 8 chunks.
    pub async fn open_reader(&self, path: &StorePath) -> Result<ObjectReader, IngestError> {
        let failed = |error: &dyn std::fmt::Display| IngestError::Read {
            path: path.to_string(),
            reason: error.to_string(),
        };
        let result = self.store.get(path).await.map_err(|e| failed(&e))?;
        let start = result.range.start;
        let mut chunks = match result.payload {
            GetResultPayload::File(mut file, _) => {
                file.seek(std::io::SeekFrom::Start(start))
                    .map_err(|e| failed(&e))?;
                return Ok(ObjectReader::File(file));
            }
            GetResultPayload::Stream(chunks) => chunks,
        };
        let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        tokio::spawn(async move {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(ObjectReader::Channel(ChannelReader {
            receiver,
            current: Bytes::new(),
        }))
    }
}

/// Walks a local landing directory (following links, as the object store does). Paths are
/// relative to `root`, the store's root.
fn list_local(root: &std::path::Path, prefix: &StorePath) -> Listing {
    let mut listing = Listing::default();
    let start = root.join(prefix.as_ref());
    for entry in walkdir::WalkDir::new(&start)
        .min_depth(1)
        .follow_links(true)
    {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                listing.unlistable.push(error.to_string());
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let unlistable = |why: &str| format!("{:?}: {why}", relative.to_string_lossy());
        let Some(name) = relative.to_str() else {
            listing
                .unlistable
                .push(unlistable("the name is not valid UTF-8"));
            continue;
        };
        let path = match StorePath::parse(name) {
            Ok(path) => path,
            Err(error) => {
                listing.unlistable.push(unlistable(&error.to_string()));
                continue;
            }
        };
        match entry.metadata() {
            Ok(meta) => listing.files.push(LandingFile {
                path,
                size: meta.len(),
            }),
            Err(error) => listing.unlistable.push(unlistable(&error.to_string())),
        }
    }
    listing
}

/// `provider=NAME` segment of a path (Hive style), if any.
pub fn provider_of(path: &str) -> Option<&str> {
    path.split('/')
        .find_map(|segment| segment.strip_prefix("provider="))
        .filter(|name| !name.is_empty())
}

fn is_provider_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !path.split('/').any(|segment| segment.starts_with('_'))
        && (lower.ends_with(".csv") || lower.ends_with(".csv.gz"))
}

/// An object's bytes, read on a blocking thread.
pub enum ObjectReader {
    File(std::fs::File),
    Channel(ChannelReader),
}

impl Read for ObjectReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ObjectReader::File(file) => file.read(buffer),
            ObjectReader::Channel(channel) => channel.read(buffer),
        }
    }
}

/// `Read` over chunks arriving on a channel.
pub struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            // Called on a blocking thread (the CSV parser's), never on the runtime.
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buffer.len().min(self.current.len());
        buffer[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_comes_from_a_hive_segment() {
        assert_eq!(provider_of("x/provider=acme/2026-11-01.csv"), Some("acme"));
        assert_eq!(provider_of("x/2026-11-01.csv"), None);
    }

    #[test]
    fn only_csv_files_outside_sidecars_are_provider_files() {
        assert!(is_provider_file("provider=a/2026-11-01.csv.gz"));
        assert!(!is_provider_file("_truth/ground_truth.csv"));
        assert!(!is_provider_file("provider=a/.part.csv"));
        assert!(!is_provider_file("provider=a/readme.txt"));
    }
}
