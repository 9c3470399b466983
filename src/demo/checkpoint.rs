//! The step record and the batches the worker writes.
//!
//! Every write that must not be torn is one `put_batch` (the controller
//! applies a batch in one transaction): a step's progress, counter,
//! checkpoint name and status, plus that step's extra keys.

use super::keys;
use crate::kv::{BatchItem, ValueType};
use base64::Engine as _;

/// Steps in a task; each is worth `PERCENT_PER_STEP`.
pub const TOTAL_STEPS: u32 = 10;
pub const PERCENT_PER_STEP: u32 = 10;

/// How far a task is: the number of steps done (0..=TOTAL_STEPS). Progress,
/// counter and checkpoint name are all derived from it, so they cannot
/// disagree in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checkpoint {
    counter: u32,
}

impl Checkpoint {
    pub const START: Checkpoint = Checkpoint { counter: 0 };

    /// `None` when `counter` is beyond the last step.
    pub fn at(counter: u32) -> Option<Checkpoint> {
        (counter <= TOTAL_STEPS).then_some(Checkpoint { counter })
    }

    pub fn counter(self) -> u32 {
        self.counter
    }

    pub fn progress(self) -> u32 {
        self.counter * PERCENT_PER_STEP
    }

    /// `step_N`, as stored in `task.checkpoint`.
    pub fn name(self) -> String {
        format!("step_{}", self.counter)
    }

    /// The step after this one, `None` once complete.
    pub fn next(self) -> Option<Checkpoint> {
        Checkpoint::at(self.counter + 1)
    }
}

/// Parses `step_N`.
pub fn parse_step_name(name: &str) -> Option<u32> {
    name.strip_prefix("step_")?.parse().ok()
}

/// The one batch that records `cp` (with the extras of steps 3 and 5).
pub fn step_batch(cp: Checkpoint, now_unix: i64) -> Vec<BatchItem> {
    let mut items = vec![
        BatchItem::new(keys::PROGRESS, cp.progress().to_string(), ValueType::Int),
        BatchItem::new(keys::COUNTER, cp.counter().to_string(), ValueType::Int),
        BatchItem::new(keys::CHECKPOINT, cp.name(), ValueType::String),
        BatchItem::new(keys::TASK_STATUS, keys::STATUS_RUNNING, ValueType::String),
        // The step's work is done: saved with the checkpoint that claims it.
        BatchItem::new(keys::WORK_DONE, cp.counter().to_string(), ValueType::Int),
    ];
    match cp.counter() {
        3 => items.push(BatchItem::new(
            keys::IMPORTANT_DATA,
            "critical_value_3",
            ValueType::String,
        )),
        5 => {
            // The original's "calculation" (3.14159 × 5), written with 6 decimals.
            let result: f64 = 15.70795;
            items.push(BatchItem::new(
                keys::CALCULATION_RESULT,
                format!("{result:.6}"),
                ValueType::Double,
            ));
            let blob = BinaryCheckpoint {
                task_id: 12345,
                progress: cp.progress() as i32,
                timestamp: now_unix,
                label: "Step5 checkpoint".to_string(),
            }
            .encode();
            items.push(BatchItem::new(
                keys::BINARY_CHECKPOINT,
                base64::engine::general_purpose::STANDARD.encode(blob),
                ValueType::Bytes,
            ));
        }
        _ => {}
    }
    items
}

/// Written once at start: the crash flag and when it was set. One batch so
/// the flag never appears without its time.
pub fn start_batch(now_unix: i64) -> Vec<BatchItem> {
    vec![
        BatchItem::new(keys::CRASHED, "true", ValueType::Bool),
        BatchItem::new(keys::CRASH_TIME, now_unix.to_string(), ValueType::String),
    ]
}

/// Written after the crash flag is removed at 100%.
pub fn completed_batch(now_unix: i64) -> Vec<BatchItem> {
    vec![
        BatchItem::new(keys::TASK_STATUS, keys::STATUS_COMPLETED, ValueType::String),
        BatchItem::new(keys::COMPLETE_TIME, now_unix.to_string(), ValueType::String),
    ]
}

/// Written after the crash flag is removed on SIGINT/SIGTERM.
pub fn stopped_batch(now_unix: i64) -> Vec<BatchItem> {
    vec![
        BatchItem::new(keys::STATUS, keys::STATUS_STOPPED, ValueType::String),
        BatchItem::new(keys::STOP_TIME, now_unix.to_string(), ValueType::String),
    ]
}

/// The 48-byte record stored in `binary.checkpoint`, the original's C struct
/// `{ int32 task_id; int32 progress; int64 timestamp; char label[32]; }`
/// without padding, all little-endian:
///
/// | bytes  | field     | type                                  |
/// |--------|-----------|---------------------------------------|
/// | 0..4   | task_id   | u32 (12345)                           |
/// | 4..8   | progress  | i32 (50)                              |
/// | 8..16  | timestamp | i64, unix seconds                     |
/// | 16..48 | label     | UTF-8, NUL-padded, at most 31 bytes   |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryCheckpoint {
    pub task_id: u32,
    pub progress: i32,
    pub timestamp: i64,
    pub label: String,
}

impl BinaryCheckpoint {
    pub const LEN: usize = 48;
    const LABEL_LEN: usize = 32;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..4].copy_from_slice(&self.task_id.to_le_bytes());
        out[4..8].copy_from_slice(&self.progress.to_le_bytes());
        out[8..16].copy_from_slice(&self.timestamp.to_le_bytes());
        // Keep a NUL terminator, as a C reader of char[32] expects one.
        let label = truncate_utf8(&self.label, Self::LABEL_LEN - 1);
        out[16..16 + label.len()].copy_from_slice(label.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| {
            format!(
                "a binary checkpoint is {} bytes, not {}",
                Self::LEN,
                bytes.len()
            )
        })?;
        let label = &bytes[16..];
        let label_end = label.iter().position(|&b| b == 0).unwrap_or(label.len());
        Ok(BinaryCheckpoint {
            task_id: u32::from_le_bytes(array(&bytes[0..4])),
            progress: i32::from_le_bytes(array(&bytes[4..8])),
            timestamp: i64::from_le_bytes(array(&bytes[8..16])),
            label: String::from_utf8_lossy(&label[..label_end]).into_owned(),
        })
    }
}

/// A fixed-size copy of `b`; callers pass ranges of the right length.
fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(b);
    out
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn now_unix() -> i64 {
    crate::clock::unix_secs(std::time::SystemTime::now()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(items: &'a [BatchItem], key: &str) -> Option<&'a BatchItem> {
        items.iter().find(|i| i.key == key)
    }

    #[test]
    fn checkpoint_derives_every_field_from_the_counter() {
        let cp = Checkpoint::at(6).unwrap();
        assert_eq!(
            (cp.progress(), cp.counter(), cp.name()),
            (60, 6, "step_6".into())
        );
        assert_eq!(Checkpoint::at(10).unwrap().next(), None);
        assert_eq!(Checkpoint::at(11), None);
        assert_eq!(parse_step_name("step_7"), Some(7));
        assert_eq!(parse_step_name("step7"), None);
    }

    #[test]
    fn step_batches_carry_the_whole_checkpoint_and_the_extras() {
        let b = step_batch(Checkpoint::at(2).unwrap(), 0);
        assert_eq!(b.len(), 5);
        assert_eq!(value(&b, keys::PROGRESS).unwrap().value, "20");
        assert_eq!(value(&b, keys::WORK_DONE).unwrap().value, "2");
        assert_eq!(
            value(&b, keys::PROGRESS).unwrap().value_type,
            ValueType::Int
        );
        assert_eq!(value(&b, keys::CHECKPOINT).unwrap().value, "step_2");

        let b = step_batch(Checkpoint::at(3).unwrap(), 0);
        assert_eq!(
            value(&b, keys::IMPORTANT_DATA).unwrap().value,
            "critical_value_3"
        );

        let b = step_batch(Checkpoint::at(5).unwrap(), 1_700_000_000);
        assert_eq!(
            value(&b, keys::CALCULATION_RESULT).unwrap().value,
            "15.707950"
        );
        let blob = value(&b, keys::BINARY_CHECKPOINT).unwrap();
        assert_eq!(blob.value_type, ValueType::Bytes);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&blob.value)
            .unwrap();
        let decoded = BinaryCheckpoint::decode(&raw).unwrap();
        assert_eq!(decoded.task_id, 12345);
        assert_eq!(decoded.progress, 50);
        assert_eq!(decoded.timestamp, 1_700_000_000);
        assert_eq!(decoded.label, "Step5 checkpoint");
        for item in &b {
            assert!(item.value_type.validate(&item.value).is_ok(), "{item:?}");
        }
    }

    #[test]
    fn binary_checkpoint_layout_is_little_endian_and_48_bytes() {
        let raw = BinaryCheckpoint {
            task_id: 12345,
            progress: 50,
            timestamp: 1,
            label: "x".repeat(40),
        }
        .encode();
        assert_eq!(raw.len(), 48);
        assert_eq!(&raw[0..4], &[0x39, 0x30, 0, 0]);
        assert_eq!(&raw[4..8], &[50, 0, 0, 0]);
        assert_eq!(&raw[8..16], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(raw[47], 0, "label keeps its NUL terminator");
        assert!(BinaryCheckpoint::decode(&raw[..47]).is_err());
    }
}
