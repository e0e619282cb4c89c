//! Fuzz `tongbao::protocol::journal::TillJournal::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::journal::TillJournal);
