//! Fuzz `tongbao::protocol::handoff::HandoffManifest::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::handoff::HandoffManifest);
