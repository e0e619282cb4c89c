//! Fuzz `tongbao::protocol::file::NoteBundle::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::file::NoteBundle);
