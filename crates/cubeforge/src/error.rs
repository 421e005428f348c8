//! The library's error type. Every variant names where the problem is (a path, URL or store key)
//! and what it is, in one line, so that the CLI can print it as is.

use std::sync::Arc;

use zarrs_storage::StorageError;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, planning or writing a cube.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A location that could not be parsed or routed.
    #[error("{url}: invalid location: {reason}")]
    InvalidUrl {
        /// What the user gave.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Nothing exists at the location.
    #[error("{location}: no such file, directory or object prefix")]
    NotFound {
        /// The location.
        location: String,
    },
    /// The location exists but holds no Zarr metadata.
    #[error("{location}: not a Zarr store (no zarr.json, .zgroup or .zarray found)")]
    NotZarr {
        /// The location.
        location: String,
    },
    /// Metadata that cannot be parsed or is inconsistent.
    #[error("{location}: invalid metadata: {reason}")]
    InvalidMetadata {
        /// The metadata document (full path of the key).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A feature of the data that cubeforge (or the `zarrs` library under it) cannot read.
    #[error("{location}: unsupported {feature}: {detail}")]
    Unsupported {
        /// The array or document.
        location: String,
        /// The feature, e.g. `codec 'delta'`, `data type '|S1'`, `calendar 'none'`.
        feature: String,
        /// More detail, ideally what to do about it.
        detail: String,
    },
    /// A chunk that exists but cannot be decoded (truncated, corrupt, wrong codec).
    #[error("{location}: cannot decode chunk: {reason}")]
    CorruptChunk {
        /// The chunk's full path.
        location: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A failure of the storage backend.
    #[error("{location}: {source}")]
    Storage {
        /// The key or prefix involved.
        location: String,
        /// The backend's error.
        source: StorageError,
    },
    /// A variable, dimension or coordinate that is not in the dataset.
    #[error("{location}: {what} not found{hint}")]
    Missing {
        /// The dataset.
        location: String,
        /// What was asked for, e.g. `variable 'sst'`.
        what: String,
        /// Suffix such as `; available: a, b` (may be empty).
        hint: String,
    },
    /// A destination that already holds data, refused so that nothing is overwritten by accident.
    #[error("{location}: destination is not empty; remove it or pass --overwrite")]
    DestinationNotEmpty {
        /// The destination.
        location: String,
    },
    /// A recipe that cannot be used, with `file:line` and the field.
    #[error("{location}: {message}")]
    Recipe {
        /// `path:line`.
        location: String,
        /// The field and the problem.
        message: String,
    },
    /// A local file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Credentials or configuration that cannot be used (the values themselves are never shown).
    #[error("{location}: {reason}")]
    Credentials {
        /// The file or variable involved.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An operation refused for safety (removing a bucket root, writing to a read-only store).
    #[error("{location}: refused: {reason}")]
    Refused {
        /// The URL or path.
        location: String,
        /// Why, and how to do it anyway where that is possible.
        reason: String,
    },
    /// Inputs or files that cannot be read as one dataset: joined along a dimension (their
    /// labels overlap, their other dimensions differ) or merged (their grids differ, a name is
    /// in both).
    #[error("{location}: {reason}")]
    Combine {
        /// The input or file, or the first of the two involved.
        location: String,
        /// What disagrees, naming the other file or input.
        reason: String,
    },
    /// A destination another writer holds ([`crate::lock`]).
    #[error(
        "{location}: locked by {holder}; wait for it to finish, or if it is no longer running, \
         pass --break-lock"
    )]
    Locked {
        /// The lock object.
        location: String,
        /// Who holds it.
        holder: String,
    },
    /// A transfer that stopped on an error; `done` says what was completed before it.
    #[error("{location}: {} ({done})", storage_message(.location, .reason))]
    Transfer {
        /// The object that failed (full URL or path).
        location: String,
        /// The backend's error.
        reason: String,
        /// What had completed, e.g. `12 of 40 objects copied before the failure`.
        done: String,
    },
    /// Work stopped on request (Ctrl-C in the Python package) before it finished.
    #[error(
        "{location}: interrupted; the cube is not finished (build again with resume to continue)"
    )]
    Interrupted {
        /// The destination.
        location: String,
    },
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A storage error at `location`, an object store's complaint reduced to one line (see
    /// [`storage_message`]); local I/O errors are kept as they are.
    #[must_use]
    pub fn storage(location: impl Into<String>, source: StorageError) -> Error {
        let location = location.into();
        let source = match source {
            StorageError::IOError(e) => StorageError::IOError(e),
            other => StorageError::Other(storage_message(&location, &other.to_string())),
        };
        Error::Storage { location, source }
    }

    /// A failure kept where several threads may report it (a chunk that did not decode, a
    /// reduction that failed), as an error of its own kind again: the error itself when nothing
    /// else holds it any more, else a copy with the same variant and message.
    #[must_use]
    pub fn from_shared(shared: Arc<Error>) -> Error {
        Arc::try_unwrap(shared).unwrap_or_else(|e| e.duplicate())
    }

    /// The same error: the same variant, fields and message.
    fn duplicate(&self) -> Error {
        match self {
            Error::InvalidUrl { url, reason } => Error::InvalidUrl {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::NotFound { location } => Error::NotFound {
                location: location.clone(),
            },
            Error::NotZarr { location } => Error::NotZarr {
                location: location.clone(),
            },
            Error::InvalidMetadata { location, reason } => Error::InvalidMetadata {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Unsupported {
                location,
                feature,
                detail,
            } => Error::Unsupported {
                location: location.clone(),
                feature: feature.clone(),
                detail: detail.clone(),
            },
            Error::CorruptChunk { location, reason } => Error::CorruptChunk {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Storage { location, source } => Error::Storage {
                location: location.clone(),
                source: match source {
                    StorageError::IOError(e) => StorageError::IOError(e.clone()),
                    other => StorageError::Other(other.to_string()),
                },
            },
            Error::Missing {
                location,
                what,
                hint,
            } => Error::Missing {
                location: location.clone(),
                what: what.clone(),
                hint: hint.clone(),
            },
            Error::DestinationNotEmpty { location } => Error::DestinationNotEmpty {
                location: location.clone(),
            },
            Error::Recipe { location, message } => Error::Recipe {
                location: location.clone(),
                message: message.clone(),
            },
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Credentials { location, reason } => Error::Credentials {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Refused { location, reason } => Error::Refused {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Combine { location, reason } => Error::Combine {
                location: location.clone(),
                reason: reason.clone(),
            },
            Error::Locked { location, holder } => Error::Locked {
                location: location.clone(),
                holder: holder.clone(),
            },
            Error::Transfer {
                location,
                reason,
                done,
            } => Error::Transfer {
                location: location.clone(),
                reason: reason.clone(),
                done: done.clone(),
            },
            Error::Interrupted { location } => Error::Interrupted {
                location: location.clone(),
            },
            Error::Other(message) => Error::Other(message.clone()),
        }
    }
}

/// An object store's error at `location` as one line that says what went wrong and where.
///
/// `object_store` reports a failed request as `Error performing GET <url> in <time>[, after N
/// retries …] - Server returned non-2xx status code: <status>: <body>`, the body being the
/// service's document (S3 and Azure XML, spread over lines; GCS JSON or XML). That becomes
/// `<Code>: <Message> (<status> from <METHOD> <url without query>[, after N retries])`; a request
/// that got no answer becomes `cannot reach <origin>: …`. A failure to find credentials (the
/// client then asks the cloud's instance-metadata service, which a laptop does not have) becomes
/// a line saying which variables to set. Anything else is kept, on one line, each part once.
#[must_use]
pub fn storage_message(location: &str, text: &str) -> String {
    if let Some(hint) = missing_credentials(location, text) {
        return hint;
    }
    let Some(request) = failed_request(text) else {
        return squash(text);
    };
    // "{METHOD} {URL} in {duration}[, after N retries, …] - {reason}"
    let (head, reason) = request.split_once(" - ").unwrap_or((request, ""));
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default();
    let url = words.next().unwrap_or_default();
    let url = readable_url(url.split('?').next().unwrap_or_default());
    let url = url.as_str();
    let retries = head
        .split_once("after ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .filter(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
    let status = reason
        .split_once("status code: ")
        .map(|(_, rest)| rest.split_once(": ").unwrap_or((rest, "")));
    let (what, context) = match status {
        Some((status, body)) => {
            let status = status.trim();
            let what = body_detail(body, status).unwrap_or_else(|| {
                match status.split_whitespace().next() {
                    Some("401" | "403") => {
                        format!("access denied, {status} (wrong or missing credentials?)")
                    }
                    Some("404") => format!("not found, {status}"),
                    _ => status.to_string(),
                }
            });
            (what, format!("{status} from {method} {url}"))
        }
        None => {
            let origin = url::Url::parse(url)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|_| url.to_string());
            let reason = squash(reason.trim_start_matches("HTTP error: "));
            (
                format!("cannot reach {origin}: {reason}"),
                format!("{method} {url}"),
            )
        }
    };
    match retries {
        Some(n) => format!("{what} ({context}, after {n} retries)"),
        None => format!("{what} ({context})"),
    }
}

/// `url` with the percent-encoded printable ASCII characters of its path decoded
/// (`object_store` encodes `-`, `.` and `/` in GCS object names: `b%2Dx/a%2Ezarr%2F0`).
fn readable_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let byte = rest
            .get(at + 1..at + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#'));
        match byte {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The part of `text` after the `Error performing ` that names an HTTP request.
fn failed_request(text: &str) -> Option<&str> {
    const MARK: &str = "Error performing ";
    text.match_indices(MARK).find_map(|(at, _)| {
        let rest = &text[at + MARK.len()..];
        let word = rest.split_whitespace().next()?;
        word.chars().all(|c| c.is_ascii_uppercase()).then_some(rest)
    })
}

/// What a service's error document says: `Code: Message` from XML, the message from JSON, or a
/// short plain body; `None` when it says no more than the status line.
fn body_detail(body: &str, status: &str) -> Option<String> {
    let body = body.trim();
    let reason_phrase = status.split_once(' ').map_or("", |(_, r)| r).trim();
    let says_more = |m: &str| !m.is_empty() && !m.eq_ignore_ascii_case(reason_phrase);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&format!("</{name}>"))?;
        // Azure appends `RequestId:…` and `Time:…` lines to its message.
        Some(
            body[start..start + len]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        )
    };
    if body.starts_with('<') {
        let code = tag("Code").filter(|c| !c.chars().all(|ch| ch.is_ascii_digit()));
        let message = tag("Message").filter(|m| says_more(m));
        return match (code, message) {
            (Some(c), Some(m)) => Some(format!("{c}: {m}")),
            (Some(c), None) => Some(c),
            (None, Some(m)) => Some(m),
            (None, None) => None,
        };
    }
    if body.starts_with('{') {
        let doc: serde_json::Value = serde_json::from_str(body).ok()?;
        let message = doc
            .pointer("/error/message")
            .or_else(|| doc.get("message"))?
            .as_str()?;
        return says_more(message).then(|| squash(message));
    }
    (body.len() <= 200 && says_more(body)).then(|| squash(body))
}

/// `text` on one line: runs of white space (new lines included) as one space, and a part
/// (between `: `) that repeats an earlier one left out.
fn squash(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut parts: Vec<&str> = Vec::new();
    for part in flat.split(": ") {
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// The line to print when an object store found no credentials: its client fell back to the
/// instance-metadata service of a cloud machine (and found none), or Azure has no account.
fn missing_credentials(location: &str, text: &str) -> Option<String> {
    // The services' metadata paths (AWS IMDS, GCE, Azure managed identity), whatever host
    // serves them.
    let metadata = [
        "169.254.169.254",
        "/latest/api/token",
        "/latest/meta-data/",
        "/computeMetadata/",
        "/metadata/identity/oauth2/token",
    ]
    .iter()
    .any(|m| text.contains(m));
    let no_account = text.contains("Account must be specified");
    if !metadata && !no_account {
        return None;
    }
    let scheme = location.split_once("://").map_or("", |(s, _)| s);
    let hint = match scheme {
        "s3" | "s3a" => {
            "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
             AWS_PROFILE, or pass --anon for a public bucket)"
        }
        "gs" | "gcs" => {
            "no Google Cloud credentials found (set GOOGLE_APPLICATION_CREDENTIALS or \
             GOOGLE_SERVICE_ACCOUNT to a service-account key file, STORAGE_EMULATOR_HOST for an \
             emulator, or pass --anon for a public bucket)"
        }
        "az" | "abfs" | "abfss" | "azure" | "adl" if no_account => {
            "no Azure storage account configured (set AZURE_STORAGE_ACCOUNT_NAME and \
             AZURE_STORAGE_ACCOUNT_KEY, or AZURE_STORAGE_USE_EMULATOR=true for Azurite)"
        }
        "az" | "abfs" | "abfss" | "azure" | "adl" => {
            "no Azure credentials found (set AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or \
             AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID, or pass --anon for a \
             public container)"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_error_keeps_its_kind_and_message() {
        let errors = [
            Error::CorruptChunk {
                location: "memory://x/a/0".into(),
                reason: "truncated".into(),
            },
            Error::Storage {
                location: "s3://b/k".into(),
                source: StorageError::Other("503 Slow Down".into()),
            },
            Error::Storage {
                location: "/d/k".into(),
                source: StorageError::IOError(Arc::new(std::io::Error::from(
                    std::io::ErrorKind::PermissionDenied,
                ))),
            },
            Error::Io {
                path: "/d".into(),
                source: std::io::Error::from_raw_os_error(28),
            },
            Error::Other("internal".into()),
        ];
        for e in errors {
            let text = e.to_string();
            let kind = std::mem::discriminant(&e);
            let shared = Arc::new(e);
            let held = shared.clone();
            // Held elsewhere too: a copy of the same kind and message.
            let copy = Error::from_shared(shared);
            assert_eq!(
                (std::mem::discriminant(&copy), copy.to_string()),
                (kind, text.clone())
            );
            // The last holder gets the error itself.
            let own = Error::from_shared(held);
            assert_eq!(
                (std::mem::discriminant(&own), own.to_string()),
                (kind, text)
            );
        }
    }

    #[test]
    fn object_store_errors_become_one_line_with_code_and_message() {
        // As moto (S3) answers a listing of a missing bucket: XML over two lines.
        let s3 = "Generic S3 error: Error performing list request: Error performing GET \
                  http://127.0.0.1:39297/nobucket?delimiter=%2F&list-type=2&prefix=x%2F in \
                  7.528924ms - Server returned non-2xx status code: 404 Not Found: <?xml \
                  version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>NoSuchBucket</Code>\
                  <Message>The specified bucket does not exist</Message><BucketName>nobucket\
                  </BucketName><RequestId>q42C</RequestId></Error>";
        assert_eq!(
            storage_message("s3://nobucket/x", s3),
            "NoSuchBucket: The specified bucket does not exist \
             (404 Not Found from GET http://127.0.0.1:39297/nobucket)"
        );
        // Azurite: the message carries request id and time on lines of their own.
        let azure = "Object at location x not found: Error performing PUT \
                     http://127.0.0.1:48169/devstoreaccount1/nobucket/x in 3.08ms - Server \
                     returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" \
                     encoding=\"UTF-8\" standalone=\"yes\"?>\n<Error>\n  <Code>ContainerNotFound\
                     </Code>\n  <Message>The specified container does not exist.\nRequestId:ae91\n\
                     Time:2026-12-02T07:46:53.887Z</Message>\n</Error>";
        assert_eq!(
            storage_message("az://nobucket/x", azure),
            "ContainerNotFound: The specified container does not exist. \
             (404 Not Found from PUT http://127.0.0.1:48169/devstoreaccount1/nobucket/x)"
        );
        // GCS JSON saying no more than the status (the URL's encoded names made readable); a
        // numeric XML code; retries.
        let gcs = "Error performing PUT http://h:1/b%2Dc/x%2Ezarr%2F%25 in 1ms - Server returned \
                   non-2xx status code: 404 Not Found: {\"error\":{\"code\":404,\"message\":\
                   \"Not Found\"}}";
        assert_eq!(
            storage_message("gs://b-c/x.zarr", gcs),
            "not found, 404 Not Found (404 Not Found from PUT http://h:1/b-c/x.zarr/%25)"
        );
        let gcs = "Generic GCS error: Error performing list request: Error performing GET \
                   http://h:1/nobucket?list-type=2 in 8.2s, after 10 retries, max_retries: 10, \
                   retry_timeout: 180s  - Server returned non-2xx status code: 500 Internal \
                   Server Error: <errorResponse><Error><Code>500</Code><Message>no bucket named \
                   nobucket</Message></Error></errorResponse>";
        assert_eq!(
            storage_message("gs://nobucket/x", gcs),
            "no bucket named nobucket (500 Internal Server Error from GET http://h:1/nobucket, \
             after 10 retries)"
        );
        // A HEAD has no body: the status says it.
        let head = "The operation lacked the necessary privileges to complete for path zarr.json: \
                    Error performing HEAD http://h:1/acct/c/zarr.json in 3ms - Server returned \
                    non-2xx status code: 403 Forbidden: ";
        assert_eq!(
            storage_message("az://c/", head),
            "access denied, 403 Forbidden (wrong or missing credentials?) \
             (403 Forbidden from HEAD http://h:1/acct/c/zarr.json)"
        );
    }

    #[test]
    fn unreachable_endpoints_and_missing_credentials_say_so() {
        let refused = "Generic S3 error: Error performing HEAD http://127.0.0.1:1/b/zarr.json in \
                       360µs, after 2 retries, max_retries: 2, retry_timeout: 180s - HTTP error: \
                       error sending request";
        assert_eq!(
            storage_message("s3://b", refused),
            "cannot reach http://127.0.0.1:1: error sending request \
             (HEAD http://127.0.0.1:1/b/zarr.json, after 2 retries)"
        );
        let imds = "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/\
                    token in 15ms - Server returned non-2xx status code: 403 Forbidden: x";
        let line = storage_message("s3://b/x", imds);
        assert!(line.starts_with("no AWS credentials found") && line.contains("AWS_PROFILE"));
        let gcs = "Generic GCS error: Error performing token request: Error performing GET \
                   http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token";
        assert!(storage_message("gs://b/x", gcs).contains("GOOGLE_APPLICATION_CREDENTIALS"));
        let azure = "cannot configure object store: Generic MicrosoftAzure error: Account must be \
                     specified";
        assert!(storage_message("az://c/x", azure).contains("AZURE_STORAGE_ACCOUNT_NAME"));
        // Through the error types: one line, the location once.
        let e = Error::storage("s3://b/x", StorageError::Other(imds.into()));
        assert!(e
            .to_string()
            .starts_with("s3://b/x: no AWS credentials found"));
        let e = Error::Transfer {
            location: "s3://nobucket/x".into(),
            reason: s3_reason(),
            done: "0 of 1 objects copied before the failure".into(),
        };
        assert_eq!(
            e.to_string(),
            "s3://nobucket/x: NoSuchBucket: The specified bucket does not exist (404 Not Found \
             from PUT http://h/nobucket/x) (0 of 1 objects copied before the failure)"
        );
    }

    fn s3_reason() -> String {
        "Object at location x not found: Error performing PUT http://h/nobucket/x in 5ms - Server \
         returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>\
         NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"
            .into()
    }

    #[test]
    fn other_messages_stay_whole_on_one_line() {
        assert_eq!(
            storage_message("s3://b", "Generic S3 error: Missing region\n  region: x: x"),
            "Generic S3 error: Missing region region: x"
        );
        // Local I/O errors are not rewritten.
        let io = Error::storage(
            "/d/k",
            StorageError::IOError(Arc::new(std::io::Error::from(
                std::io::ErrorKind::PermissionDenied,
            ))),
        );
        assert!(matches!(
            io,
            Error::Storage {
                source: StorageError::IOError(_),
                ..
            }
        ));
    }
}
