//! How checks reach their targets: the HTTP client every check but the probe sends through
//! (`client`: TLS, timeouts, a shared budget for bodies in flight) and the probe's own HTTP/1.1
//! connections (`conn`). A leaf: it knows nothing of checks, configs or reports.

pub(crate) mod client;
pub(crate) mod conn;
