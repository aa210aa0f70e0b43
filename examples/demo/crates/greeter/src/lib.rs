//! A workspace member with tasks of its own.
