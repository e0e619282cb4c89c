//! Fuzz `tongbao::protocol::payment::Receipt::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::payment::Receipt);
