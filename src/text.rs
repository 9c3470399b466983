//! Every sentence a person reads in the dashboard, the headless lines and the
//! timeline, in English and Chinese side by side: a fixed text is a `Msg` key
//! with both texts in one table (`labels`); a text with values is a function
//! whose two languages sit next to each other (`both!`, or a `match` on
//! [`Lang`]), so neither can be added alone. `recovery` keeps only what
//! happened; this module says it.
//!
//! The state words that recordings and scripts match (`RUNNING`, `CRASHED`,
//! `RECOVERING`, `RESUMED from 50%`, `STOPPED`, `COMPLETED`, `FAILED`,
//! `app.crashed ARMED|SET|CLEARED|NO FLAG`) are never translated; Chinese may
//! add a gloss after them (`labels::gloss`).

pub mod flash;
pub mod labels;
pub mod lang;
pub mod panes;
pub mod plain;
pub mod story;
pub mod timeline;

pub use labels::Msg;
pub use lang::{width, Lang};
