//! Fuzz `tongbao::protocol::proof::DoubleSpendProof::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::proof::DoubleSpendProof);
