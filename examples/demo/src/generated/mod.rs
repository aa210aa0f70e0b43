pub mod tasks;
pub mod lookup;
