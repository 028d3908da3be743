//! Objects in an S3-compatible bucket (the `object_store` crate), for
//! several `obscura serve` processes sharing one bucket.
//!
//! Keys are `<prefix>/<tenant id>/<object name>`, both random hex. Objects
//! arrive already encrypted. A write is buffered up to one part (8 MiB):
//! a smaller object is one PUT, a larger one a multipart upload with at
//! most two parts in flight, so a 1 GB object never sits in memory; either
//! becomes visible only when complete, and an upload dropped before its
//! commit is aborted. Reads are ranged GETs streamed chunk by chunk (the
//! segment reader seeks by opening the object at a segment's offset).
//!
//! Uploads a crash left open are not listed by `object_store`: give the
//! bucket a lifecycle rule that aborts incomplete multipart uploads.

use crate::driver::Driver;
use crate::objects::{ObjectInfo, ObjectKey, ObjectStore, ObjectWriter};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, PutPayload, WriteMultipart};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// One part of a multipart upload, and the largest object sent in one PUT.
const PART: usize = 8 << 20;

/// Parts of one upload in flight at once.
const IN_FLIGHT: usize = 2;

/// Where the bucket is and how to sign requests.
#[derive(Clone, Default)]
pub struct S3Config {
    /// The endpoint URL (`https://…`; plain `http://` only on a loopback
    /// address); `None` for AWS's, from the region.
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The region (`us-east-1` if `None` and the environment names none).
    pub region: Option<String>,
    /// A key prefix for every object (`archive` → `archive/<tenant>/<name>`).
    pub prefix: String,
    /// Access key id and secret (and session token); `None` to take them
    /// from the environment (`AWS_ACCESS_KEY_ID`, … or the instance's role).
    pub credentials: Option<S3Credentials>,
}

/// Static S3 credentials.
#[derive(Clone, Default)]
pub struct S3Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("credentials", &self.credentials.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Encrypted objects in an S3 bucket.
pub struct S3Store {
    store: Arc<dyn object_store::ObjectStore>,
    prefix: Path,
    driver: Driver,
}

/// An `object_store` error as an I/O error (not found stays not found).
fn io_err(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, e.to_string())
        }
        e => io::Error::other(e.to_string()),
    }
}

/// Whether `url`'s host is a loopback address.
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

impl S3Store {
    /// Connect to the bucket (no request is made until the first use).
    pub fn open(config: &S3Config) -> io::Result<S3Store> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if config.bucket.is_empty() {
            return Err(bad("object_store.bucket is empty".into()));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if let Some(endpoint) = &config.endpoint {
            let plain = endpoint.starts_with("http://");
            if plain && !loopback(endpoint) {
                return Err(bad(
                    "object_store.endpoint: plain http only on a loopback address; use https"
                        .into(),
                ));
            }
            b = b.with_endpoint(endpoint).with_allow_http(plain);
        } else {
            b = b.with_allow_http(false);
        }
        match &config.region {
            Some(r) => b = b.with_region(r),
            None if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none() =>
            {
                b = b.with_region("us-east-1")
            }
            None => {}
        }
        if let Some(c) = &config.credentials {
            b = b
                .with_access_key_id(&c.access_key_id)
                .with_secret_access_key(&c.secret_access_key);
            if let Some(t) = &c.session_token {
                b = b.with_token(t);
            }
        }
        let store = b.build().map_err(|e| bad(format!("object_store: {e}")))?;
        Ok(S3Store {
            store: Arc::new(store),
            prefix: Path::from(config.prefix.trim_matches('/')),
            driver: Driver::get()?,
        })
    }

    fn tenant_path(&self, tenant: &str) -> Path {
        self.prefix.child(tenant)
    }

    fn path(&self, key: &ObjectKey) -> Path {
        self.tenant_path(key.tenant()).child(key.name())
    }
}

impl ObjectStore for S3Store {
    fn put(&self, key: &ObjectKey) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.store.clone(),
            path: self.path(key),
            driver: self.driver,
            buf: Vec::new(),
            upload: None,
            bytes: 0,
        }))
    }

    fn get(&self, key: &ObjectKey) -> io::Result<Box<dyn Read + Send>> {
        self.get_from(key, 0)
    }

    fn get_from(&self, key: &ObjectKey, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let options = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let path = self.path(key);
        let got = self
            .driver
            .block_on(self.store.get_opts(&path, options))
            .map_err(io_err)?;
        Ok(Box::new(S3Reader {
            stream: got.into_stream(),
            chunk: Bytes::new(),
            driver: self.driver,
        }))
    }

    fn delete(&self, key: &ObjectKey) -> io::Result<()> {
        match self.driver.block_on(self.store.delete(&self.path(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn delete_tenant(&self, tenant: &str) -> io::Result<()> {
        let prefix = self.tenant_path(tenant);
        let store = self.store.clone();
        self.driver.block_on(async {
            let paths = store.list(Some(&prefix)).map_ok(|m| m.location).boxed();
            store
                .delete_stream(paths)
                .try_for_each(|_| async { Ok(()) })
                .await
                .map_err(io_err)
        })
    }

    fn list(&self, tenant: &str) -> io::Result<Vec<ObjectInfo>> {
        let prefix = self.tenant_path(tenant);
        let found: Vec<_> = self
            .driver
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(io_err)?;
        Ok(found
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                ObjectKey::new(tenant, &name)?;
                Some(ObjectInfo {
                    name,
                    modified: m.last_modified.into(),
                })
            })
            .collect())
    }

    fn tenants(&self) -> io::Result<Vec<String>> {
        let listed = self
            .driver
            .block_on(self.store.list_with_delimiter(Some(&self.prefix)))
            .map_err(io_err)?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|t| ObjectKey::new(t, "0000").is_some())
            .collect())
    }
}

/// An object being written: one part buffered, then a multipart upload.
struct S3Writer {
    store: Arc<dyn object_store::ObjectStore>,
    path: Path,
    driver: Driver,
    buf: Vec<u8>,
    upload: Option<WriteMultipart>,
    bytes: u64,
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.bytes += data.len() as u64;
        if self.upload.is_none() {
            if self.buf.len() + data.len() <= PART {
                self.buf.extend_from_slice(data);
                return Ok(data.len());
            }
            let upload = self
                .driver
                .block_on(self.store.put_multipart(&self.path))
                .map_err(io_err)?;
            let mut upload = WriteMultipart::new_with_chunk_size(upload, PART);
            let first = std::mem::take(&mut self.buf);
            self.driver.block_on(async { upload.write(&first) });
            self.upload = Some(upload);
        }
        let upload = self.upload.as_mut().expect("started above");
        self.driver
            .block_on(async {
                upload.write(data);
                upload.wait_for_capacity(IN_FLIGHT).await
            })
            .map_err(io_err)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> io::Result<u64> {
        match self.upload.take() {
            Some(upload) => self.driver.block_on(upload.finish()),
            None => {
                let body = PutPayload::from(std::mem::take(&mut self.buf));
                self.driver.block_on(self.store.put(&self.path, body))
            }
        }
        .map_err(io_err)?;
        Ok(self.bytes)
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            let _ = self.driver.block_on(upload.abort());
        }
    }
}

/// A GET's body, read chunk by chunk as it arrives.
struct S3Reader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    driver: Driver,
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.driver.block_on(self.stream.next()) {
                Some(chunk) => self.chunk = chunk.map_err(io_err)?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(loopback("http://127.0.0.1:9000"));
        assert!(loopback("http://[::1]:9000/"));
        assert!(loopback("http://localhost"));
        assert!(!loopback("http://10.0.0.5:9000"));
        assert!(!loopback("http://s3.example.com"));
        let config = |endpoint: &str| S3Config {
            endpoint: Some(endpoint.into()),
            bucket: "b".into(),
            ..S3Config::default()
        };
        let err = S3Store::open(&config("http://s3.example.com"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("loopback"));
        assert!(S3Store::open(&config("http://127.0.0.1:9")).is_ok());
    }
}
