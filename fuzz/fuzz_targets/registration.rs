//! Fuzz `tongbao::protocol::certificate::Registration::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::certificate::Registration);
