//! Fuzz `tongbao::protocol::till::TillAuthorization::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::till::TillAuthorization);
