//! Fuzz `tongbao::protocol::coin::Coin::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::coin::Coin);
