//! Fuzz `tongbao::settlement::CoinState::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::settlement::CoinState);
