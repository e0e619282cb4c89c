//! Fuzz `tongbao::protocol::certificate::Certificate::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::certificate::Certificate);
