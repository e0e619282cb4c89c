//! Fuzz `tongbao::protocol::payment::Payment::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::payment::Payment);
