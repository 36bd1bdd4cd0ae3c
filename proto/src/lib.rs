//! Protobuf wire contracts of Altdata Explorer, generated from `proto/altdata/v1/*.proto`.
//!
//! Every message carries `schema_version`; [`SCHEMA_VERSION`] is the one this build writes
//! and the only one it accepts.

/// Version 1 of the wire contracts.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/altdata.v1.rs"));
}

/// The `schema_version` this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

pub use prost::Message;
