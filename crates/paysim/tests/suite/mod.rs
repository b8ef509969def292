//! The areas: the HTTP API, the binary's command line, the faults on demand, and blue and green
//! sharing one database.

mod api;
mod binary;
mod faults;
mod shared_db;
