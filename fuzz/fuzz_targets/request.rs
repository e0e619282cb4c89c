//! Fuzz `tongbao::protocol::request::PaymentRequest::decode`.
#![no_main]
tongbao_fuzz::decode_target!(tongbao::protocol::request::PaymentRequest);
