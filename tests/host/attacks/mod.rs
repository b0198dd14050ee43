//! Attacks on tenant isolation and on the host, tried as an attacker would and kept as
//! tests: each one failed before its fix.

mod connections;
mod cross_site;
mod tenants;
