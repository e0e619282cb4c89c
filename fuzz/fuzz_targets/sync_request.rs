//! Fuzz `tongbao::protocol::sync::SyncRequest::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::sync::SyncRequest);
