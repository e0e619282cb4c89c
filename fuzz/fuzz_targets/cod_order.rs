//! Fuzz `tongbao::protocol::cod_order::CodOrder::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::cod_order::CodOrder);
