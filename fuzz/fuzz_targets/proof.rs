//! Fuzz `tongbao::protocol::proof::DoubleSpendProof::decode`: both kinds, two spends (first byte 1)
//! and collected then spent (first bytes 0, 2), with the collection statement inside.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::proof::DoubleSpendProof);
