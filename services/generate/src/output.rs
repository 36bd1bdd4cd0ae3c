//! Where the files go: a local directory (plain path) or any object_store URL
//! (`s3://bucket/prefix`, `file:///abs/dir`, `memory:///`). Files are streamed with
//! object_store's buffered writer, so a day's file is never held in memory whole.

use crate::error::GenerateError;
use bytes::Bytes;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Part size of multipart uploads, and the most a writer buffers before uploading.
const WRITE_CAPACITY: usize = 8 << 20;

/// The output location of a run.
pub(crate) struct Output {
    store: Arc<dyn ObjectStore>,
    base: Path,
    display: String,
}

impl Output {
    /// Opens a plain directory (created if missing) or an object store URL. S3 settings come
    /// from the usual `AWS_*` environment variables.
    pub fn open(location: &str) -> Result<Output, GenerateError> {
        let fail = |reason: String| GenerateError::OpenOutput {
            location: location.to_owned(),
            reason,
        };
        let display = location.trim_end_matches('/').to_owned();
        if location.contains("://") {
            let url = url::Url::parse(location).map_err(|e| fail(e.to_string()))?;
            let options = std::env::vars().filter(|(key, _)| key.starts_with("AWS_"));
            let (store, base) =
                object_store::parse_url_opts(&url, options).map_err(|e| fail(e.to_string()))?;
            return Ok(Output {
                store: Arc::from(store),
                base,
                display,
            });
        }
        std::fs::create_dir_all(location).map_err(|e| fail(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(location).map_err(|e| fail(e.to_string()))?;
        Ok(Output {
            store: Arc::new(store),
            base: Path::default(),
            display,
        })
    }

    /// The full location of a file, as the user would write it.
    pub fn display(&self, relative: &str) -> String {
        format!("{}/{relative}", self.display)
    }

    pub fn writer(&self, relative: &str) -> Result<FileWriter, GenerateError> {
        let relative_path = Path::parse(relative).map_err(|e| {
            GenerateError::InvalidConfig(format!("bad output path {relative:?}: {e}"))
        })?;
        let path: Path = self.base.parts().chain(relative_path.parts()).collect();
        Ok(FileWriter {
            inner: BufWriter::with_capacity(Arc::clone(&self.store), path, WRITE_CAPACITY),
            name: self.display(relative),
            bytes: 0,
        })
    }
}

/// One output file being written.
pub(crate) struct FileWriter {
    inner: BufWriter,
    name: String,
    bytes: u64,
}

impl FileWriter {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn put(&mut self, bytes: Bytes) -> Result<(), GenerateError> {
        self.bytes += bytes.len() as u64;
        self.inner
            .put(bytes)
            .await
            .map_err(|source| GenerateError::Write {
                path: self.name.clone(),
                source,
            })
    }

    /// Completes the upload; the file appears only now.
    pub async fn finish(mut self) -> Result<u64, GenerateError> {
        self.inner
            .shutdown()
            .await
            .map_err(|e| GenerateError::Write {
                path: self.name.clone(),
                source: object_store::Error::Generic {
                    store: "output",
                    source: Box::new(e),
                },
            })?;
        Ok(self.bytes)
    }

    /// Drops a partial upload, so no half-written file is left behind.
    pub async fn abort(mut self) {
        if let Err(error) = self.inner.abort().await {
            tracing::warn!(file = %self.name, %error, "could not abort a partial upload");
        }
    }
}
