//! Fuzz `tongbao::protocol::keyset::IssuerKeySet::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::keyset::IssuerKeySet);
