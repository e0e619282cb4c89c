//! Fuzz `tongbao::protocol::sync::SyncResponse::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::sync::SyncResponse);
