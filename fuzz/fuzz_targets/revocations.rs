//! Fuzz `tongbao::protocol::revocation::RevocationList::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::revocation::RevocationList);
