//! Attacks shared by the security suite's tasks: each task file calls one of these.
#![allow(dead_code)]

pub mod fs;
pub mod res;
pub mod net;
