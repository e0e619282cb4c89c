//! Fuzz `tongbao::protocol::note::Note::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::note::Note);
