//! paysim's tests, one binary with a module per area; `common` starts servers and clients.

mod common;
mod suite;
