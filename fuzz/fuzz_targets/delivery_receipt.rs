//! Fuzz `tongbao::protocol::delivery::DeliveryReceipt::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::delivery::DeliveryReceipt);
