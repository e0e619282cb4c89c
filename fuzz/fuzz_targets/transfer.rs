//! Fuzz `tongbao::protocol::transfer::Transfer::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::transfer::Transfer);
