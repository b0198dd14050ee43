//! The built filter module, as Envoy would load it.

mod module;
