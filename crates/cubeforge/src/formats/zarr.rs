//! Zarr v2 and v3: hierarchy discovery (v2 with or without consolidated `.zmetadata`, v3 with or
//! without inline consolidated metadata, implicit v3 groups), array metadata summaries, chunk-wise
//! reads through `zarrs` (the [`ChunkSource`](crate::source::ChunkSource) the executor reads), and
//! the one writer of Zarr metadata documents.
//!
//! Metadata documents are parsed twice on purpose: once into a small [`ArrayMeta`] summary of our
//! own (so that `info` can describe an array even when `zarrs` cannot decode it, and name the
//! unsupported feature), and once by `zarrs` itself, which owns all decoding.
//!
//! | file | what |
//! |---|---|
//! | `zarr/meta.rs` | [`ArrayMeta`]: what an array's metadata document says |
//! | `zarr/hierarchy.rs` | [`list_group`]: the members of a group; [`erase_prefix`] |
//! | `zarr/array.rs` | [`ZarrArray`]: chunk and unit reads, the `ChunkSource` implementation |
//! | `zarr/blosc.rs` | C-Blosc called directly: decoding into reused buffers, byte planes |
//! | `zarr/writer.rs` | array metadata documents and the group commit (the root group key last: `.zgroup` after `.zmetadata`) |

use zarrs::array::Array;
use zarrs_storage::ReadableWritableListableStorageTraits;

mod array;
pub mod blosc;
mod hierarchy;
mod lenient_json;
mod meta;
pub mod writer;

pub use array::{ZarrArray, MAX_CHUNK_BYTES, PART_BYTES};
pub(crate) use hierarchy::key_in;
pub use hierarchy::{erase_prefix, list_group, ArrayEntry, GroupListing};
pub use meta::{element_count, ArrayMeta};

/// The `zarrs` array type over cubeforge's storage handle.
pub type ZArray = Array<dyn ReadableWritableListableStorageTraits>;

/// A Zarr format version.
pub type ZarrFormat = u8;
