//! Fuzz `tongbao::protocol::sync::Confirmation::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::sync::Confirmation);
