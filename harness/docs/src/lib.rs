//! `mic-docs`: the docs checker behind `mic docs check`.

pub mod classify;
pub mod extract;
pub mod op;
pub mod parse;
pub mod placeholder;
pub mod specs;
pub mod wrap;
