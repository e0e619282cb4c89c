//! Fuzz `tongbao::protocol::refund::Refund::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::refund::Refund);
